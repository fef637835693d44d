//! Per-user quota from the passwd-file's extra fields, as Dovecot writes them:
//!
//! ```text
//! extra      = field *(SP field)
//! field      = "userdb_quota_rule" [digits] "=" rule / other-field
//! rule       = "*" ":" limit *(":" limit) / "*:ignore" / "none"
//! limit      = ("storage" / "bytes") "=" number [unit] / "messages" "=" number
//! unit       = "B" / "K" / "M" / "G" / "T"     ; any case, powers of 1024
//! ```
//!
//! `storage` without a unit is in KiB and `bytes` without one in bytes (as Dovecot reads
//! them); a limit of `0`, `*:ignore` and `none` mean no limit. Rules are read strictly: a rule
//! for another mailbox than `*` (skua has one quota root per user), a relative (`+`, `-`) or
//! percent value, an unknown limit name or a malformed number is a load warning and the rule
//! is ignored as a whole; loading never fails over a rule. A later rule overrides an earlier
//! one for the resources it names. What the rules leave unnamed falls back to the config's
//! `[quota]` ([`UserQuota::over`]).

use crate::store::QuotaLimits;

/// The limits a user's rules name; `None` where they say nothing (the default applies),
/// `Some(None)` for an explicit "no limit".
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct UserQuota {
    /// STORAGE in KiB.
    pub storage_kib: Option<Option<u64>>,
    /// MESSAGE.
    pub messages: Option<Option<u64>>,
}

impl UserQuota {
    /// These limits where they are named, `default`'s elsewhere (the MAILBOX limit always
    /// comes from `default`: Dovecot has no such rule).
    #[must_use]
    pub fn over(&self, default: QuotaLimits) -> QuotaLimits {
        QuotaLimits {
            storage_kib: self.storage_kib.unwrap_or(default.storage_kib),
            messages: self.messages.unwrap_or(default.messages),
            mailboxes: default.mailboxes,
        }
    }

    /// True when no rule named anything.
    #[must_use]
    pub fn is_empty(&self) -> bool {
        *self == UserQuota::default()
    }
}

/// Reads the quota rules among a passwd-file line's extra fields; the second part is one
/// message per rule that was ignored, for the load log.
#[must_use]
pub fn parse_extra(extra: &str) -> (UserQuota, Vec<String>) {
    let mut quota = UserQuota::default();
    let mut warnings = Vec::new();
    for field in extra.split_ascii_whitespace() {
        let Some((key, value)) = field.split_once('=') else { continue };
        let Some(suffix) = key.strip_prefix("userdb_quota_rule") else { continue };
        if !suffix.bytes().all(|b| b.is_ascii_digit()) {
            continue;
        }
        match parse_rule(value) {
            Ok(rule) => {
                quota.storage_kib = rule.storage_kib.or(quota.storage_kib);
                quota.messages = rule.messages.or(quota.messages);
            }
            Err(reason) => warnings.push(format!("{key}={value}: {reason}")),
        }
    }
    (quota, warnings)
}

/// One rule's value.
fn parse_rule(rule: &str) -> Result<UserQuota, String> {
    if rule == "none" || rule == "*:ignore" {
        return Ok(UserQuota { storage_kib: Some(None), messages: Some(None) });
    }
    let Some(limits) = rule.strip_prefix("*:") else {
        return Err("only rules for all mailboxes (\"*:\") are supported".into());
    };
    let mut quota = UserQuota::default();
    for limit in limits.split(':') {
        let Some((name, value)) = limit.split_once('=') else {
            return Err(format!("not a limit: {limit:?}"));
        };
        match name {
            "storage" => quota.storage_kib = Some(storage_kib(value, 1024)?),
            "bytes" => quota.storage_kib = Some(storage_kib(value, 1)?),
            "messages" => quota.messages = Some(zero_unlimited(number(value)?)),
            other => return Err(format!("unknown limit {other:?}")),
        }
    }
    Ok(quota)
}

/// A storage size as the config's `[quota] storage` takes it (`"1G"`, `"500M"`, `"0"`): a
/// number with an optional unit B/K/M/G/T (any case, powers of 1024; none: KiB, as Dovecot's
/// `storage=`), in KiB rounded up; `0` is no limit.
///
/// # Errors
/// Not such a size.
pub fn parse_storage_kib(value: &str) -> Result<Option<u64>, String> {
    storage_kib(value, 1024)
}

/// A storage value in KiB (rounded up): `unitless` is the size of a unit-less number.
fn storage_kib(value: &str, unitless: u64) -> Result<Option<u64>, String> {
    let (digits, multiplier) = match value.as_bytes().last().map(u8::to_ascii_uppercase) {
        Some(b'B') => (&value[..value.len() - 1], 1u64),
        Some(b'K') => (&value[..value.len() - 1], 1 << 10),
        Some(b'M') => (&value[..value.len() - 1], 1 << 20),
        Some(b'G') => (&value[..value.len() - 1], 1 << 30),
        Some(b'T') => (&value[..value.len() - 1], 1 << 40),
        _ => (value, unitless),
    };
    let bytes =
        number(digits)?.checked_mul(multiplier).ok_or_else(|| format!("{value:?} is too large"))?;
    Ok(zero_unlimited(bytes.div_ceil(1024)))
}

/// A plain decimal number (no sign, no percent).
fn number(digits: &str) -> Result<u64, String> {
    if digits.is_empty() || !digits.bytes().all(|b| b.is_ascii_digit()) || digits.len() > 19 {
        return Err(format!(
            "{digits:?} is not a number (relative and % limits are not supported)"
        ));
    }
    digits.parse().map_err(|_| format!("{digits:?} is too large"))
}

fn zero_unlimited(value: u64) -> Option<u64> {
    (value != 0).then_some(value)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn rules(extra: &str) -> UserQuota {
        let (quota, warnings) = parse_extra(extra);
        assert!(warnings.is_empty(), "{warnings:?}");
        quota
    }

    #[test]
    fn dovecot_rules() {
        let quota = rules("userdb_quota_rule=*:storage=1G userdb_quota_rule2=*:messages=10000");
        assert_eq!(quota.storage_kib, Some(Some(1 << 20)));
        assert_eq!(quota.messages, Some(Some(10_000)));
        assert_eq!(rules("userdb_quota_rule=*:storage=100").storage_kib, Some(Some(100)));
        assert_eq!(rules("userdb_quota_rule=*:storage=2m").storage_kib, Some(Some(2048)));
        assert_eq!(rules("userdb_quota_rule=*:bytes=1025").storage_kib, Some(Some(2)));
        assert_eq!(rules("userdb_quota_rule=*:storage=10B").storage_kib, Some(Some(1)));
        assert_eq!(rules("userdb_quota_rule=*:storage=0").storage_kib, Some(None));
        let both = rules("userdb_quota_rule=*:storage=1T:messages=5");
        assert_eq!(both, UserQuota { storage_kib: Some(Some(1 << 30)), messages: Some(Some(5)) });
        let none = UserQuota { storage_kib: Some(None), messages: Some(None) };
        assert_eq!(rules("userdb_quota_rule=none"), none);
        assert_eq!(rules("userdb_quota_rule=*:ignore"), none);
        // Other extra fields are not ours.
        assert!(rules("userdb_mail=maildir:~/Maildir nopassword=y").is_empty());
    }

    #[test]
    fn later_rules_override_what_they_name() {
        let quota = rules("userdb_quota_rule=*:storage=1G userdb_quota_rule2=*:storage=2G");
        assert_eq!(quota.storage_kib, Some(Some(2 << 20)));
        let default = QuotaLimits { storage_kib: Some(1), messages: Some(2), mailboxes: Some(3) };
        let mixed = rules("userdb_quota_rule=*:messages=0").over(default);
        assert_eq!(mixed, QuotaLimits { storage_kib: Some(1), messages: None, mailboxes: Some(3) });
    }

    #[test]
    fn bad_rules_are_warnings_and_ignored_whole() {
        for bad in [
            "userdb_quota_rule=Trash:storage=+100M",
            "userdb_quota_rule=*:storage=10%",
            "userdb_quota_rule=*:storage=-1",
            "userdb_quota_rule=*:storage=1X",
            "userdb_quota_rule=*:storage=",
            "userdb_quota_rule=*:storage=1G:bogus=2",
            "userdb_quota_rule=*:messages=1k",
            "userdb_quota_rule=*:storage=99999999999999999999",
            "userdb_quota_rule=*:storage=99999999999T",
            "userdb_quota_rule=*",
            "userdb_quota_rule=ignore",
        ] {
            let (quota, warnings) = parse_extra(bad);
            assert!(quota.is_empty(), "{bad}");
            assert_eq!(warnings.len(), 1, "{bad}");
        }
    }
}
