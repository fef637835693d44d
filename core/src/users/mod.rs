//! Users: the passwd-file and password hashes (in progress).
