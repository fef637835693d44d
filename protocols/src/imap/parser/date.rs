//! Calendar arithmetic for IMAP dates: proleptic Gregorian, days counted from 1970-01-01.
//! Shared by the parser (`date`, `date-time`) and the encoder (INTERNALDATE).

/// Month names as IMAP spells them (`date-month`).
pub(crate) const MONTH_NAMES: [&str; 12] =
    ["Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec"];

/// `date-month`, matched without case, as 1..=12.
pub(crate) fn month_from_name(name: &[u8]) -> Option<u32> {
    let index = MONTH_NAMES.iter().position(|m| m.as_bytes().eq_ignore_ascii_case(name))?;
    Some(u32::try_from(index).expect("12 months") + 1)
}

fn is_leap(year: i64) -> bool {
    (year % 4 == 0 && year % 100 != 0) || year % 400 == 0
}

/// Days in `month` (1..=12) of `year`.
fn month_days(year: i64, month: u32) -> u32 {
    match month {
        2 if is_leap(year) => 29,
        2 => 28,
        4 | 6 | 9 | 11 => 30,
        _ => 31,
    }
}

/// Days from 1970-01-01 to `year-month-day`; `None` if no such day exists.
pub fn days_from_civil(year: i64, month: u32, day: u32) -> Option<i64> {
    if !(1..=12).contains(&month) || day == 0 || day > month_days(year, month) {
        return None;
    }
    Some(days_from_civil_unchecked(year, i64::from(month), i64::from(day)))
}

/// Days from 1970-01-01 to `year-month-day` of the proleptic Gregorian calendar, for a month
/// in 1..=12 and a day the caller vouches for (a day past the month's end runs on into the
/// next: the callers that parse looser date forms rely on that, as they always have).
#[must_use]
pub fn days_from_civil_unchecked(year: i64, month: i64, day: i64) -> i64 {
    // Count from March so the leap day is the last of the "year" (a well-known method).
    let y = if month <= 2 { year - 1 } else { year };
    let era = y.div_euclid(400);
    let year_of_era = y - era * 400;
    let shifted_month = (month + 9) % 12;
    let day_of_year = (153 * shifted_month + 2) / 5 + day - 1;
    let day_of_era = year_of_era * 365 + year_of_era / 4 - year_of_era / 100 + day_of_year;
    era * 146_097 + day_of_era - 719_468
}

/// The inverse of [`days_from_civil`]: `(year, month, day)`.
pub fn civil_from_days(days: i64) -> (i64, u32, u32) {
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let day_of_era = z - era * 146_097;
    let year_of_era =
        (day_of_era - day_of_era / 1460 + day_of_era / 36_524 - day_of_era / 146_096) / 365;
    let day_of_year = day_of_era - (365 * year_of_era + year_of_era / 4 - year_of_era / 100);
    let shifted_month = (5 * day_of_year + 2) / 153;
    let day = u32::try_from(day_of_year - (153 * shifted_month + 2) / 5 + 1).expect("1..=31");
    let month = u32::try_from((shifted_month + 2) % 12 + 1).expect("1..=12");
    let year = year_of_era + era * 400 + i64::from(month <= 2);
    (year, month, day)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn known_days() {
        assert_eq!(days_from_civil(1970, 1, 1), Some(0));
        assert_eq!(days_from_civil(2000, 3, 1), Some(11_017));
        assert_eq!(days_from_civil(1969, 12, 31), Some(-1));
        assert_eq!(days_from_civil(2026, 2, 29), None);
        assert_eq!(days_from_civil(2026, 13, 1), None);
        assert_eq!(month_from_name(b"dEc"), Some(12));
        assert_eq!(month_from_name(b"Dece"), None);
    }

    #[test]
    fn civil_round_trips_over_four_centuries() {
        for days in -800..150_000 {
            let (y, m, d) = civil_from_days(days);
            assert_eq!(days_from_civil(y, m, d), Some(days), "{y}-{m}-{d}");
        }
    }
}
