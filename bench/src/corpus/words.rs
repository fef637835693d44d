//! Vocabulary for the corpus generator: plain words, non-ASCII words in several scripts, people
//! and subjects, so generated mail exercises charsets and encoded words as real mail does.

/// Common English words for body text.
pub const WORDS: &[&str] = &[
    "the", "meeting", "report", "budget", "please", "review", "attached", "schedule", "project",
    "team", "update", "thanks", "regards", "tomorrow", "deadline", "server", "mailbox", "quarter",
    "results", "customer", "invoice", "draft", "proposal", "question", "answer", "release", "plan",
    "and", "of", "to", "in", "for", "with", "on", "we", "you", "will", "can", "have", "this",
    "that", "from", "about", "would", "should", "next", "week", "notes", "agenda", "call", "office",
    "delivery", "storage", "backup", "network", "latency", "benchmark", "summary", "contract",
];

/// Words outside ASCII: Latin with diacritics, Greek, Cyrillic, CJK, emoji.
pub const NON_ASCII_WORDS: &[&str] = &[
    "Grüße", "naïve", "café", "Zürich", "São Paulo", "smørrebrød", "Kraków", "façade", "jalapeño",
    "Ελληνικά", "Привет", "спасибо", "日本語", "東京", "你好", "안녕하세요", "🙂", "Ærøskøbing",
];

/// Display names and local parts of senders and recipients.
pub const PEOPLE: &[(&str, &str)] = &[
    ("Alice Martin", "alice.martin"),
    ("Bob Smith", "bob"),
    ("José Álvarez", "jose.alvarez"),
    ("Zoë Müller", "zoe.mueller"),
    ("Łukasz Nowak", "lukasz"),
    ("田中 太郎", "tanaka"),
    ("Ольга Иванова", "olga"),
    ("Chen Wei", "chen.wei"),
    ("Fatima Zahra", "fatima"),
    ("Søren Kierkegaard", "soren"),
    ("Mary O'Brien", "mary.obrien"),
    ("Renée Dubois", "renee"),
];

/// Mail domains (reserved for documentation and testing, never routable).
pub const DOMAINS: &[&str] = &["example.org", "example.com", "example.net", "mail.example.org"];

/// Subjects, some non-ASCII so they need RFC 2047 encoded words.
pub const SUBJECTS: &[&str] = &[
    "Quarterly report",
    "Meeting notes from Tuesday",
    "Invoice 2024-117",
    "Re: Server migration plan",
    "Fwd: Conference schedule",
    "Café réunion à Zürich",
    "Grüße aus München",
    "Отчёт за квартал",
    "会議の議事録",
    "Προσφορά για το έργο",
    "Lunch tomorrow? 🙂",
    "Backup storage quotas",
    "Weekly status update",
    "Your order has shipped",
];

/// Attachment kinds: (file stem, extension, MIME type).
pub const ATTACHMENTS: &[(&str, &str, &str)] = &[
    ("report", "pdf", "application/pdf"),
    ("photo", "jpg", "image/jpeg"),
    ("diagram", "png", "image/png"),
    ("data", "bin", "application/octet-stream"),
    ("archive", "zip", "application/zip"),
    ("Präsentation", "pdf", "application/pdf"),
];
