//! Calendar months in UTC: what usage is counted and invoiced by.

use std::fmt;

use serde::{Deserialize, Serialize};
use time::{Date, OffsetDateTime, Time};

use crate::Timestamp;
use crate::customer::InvalidInput;

#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub struct Month {
    year: i32,
    /// 1-12
    month: u8,
}

impl Month {
    pub fn of(instant: Timestamp) -> Self {
        let t = OffsetDateTime::from_unix_timestamp(instant.unix()).unwrap_or(OffsetDateTime::UNIX_EPOCH);
        Self { year: t.year(), month: u8::from(t.month()) }
    }

    /// `YYYY-MM`.
    pub fn parse(text: &str) -> Result<Self, InvalidInput> {
        let bad = || InvalidInput::new("month", format!("`{text}` is not a month like 2026-11"));
        let (year, month) = text.trim().split_once('-').ok_or_else(bad)?;
        let year: i32 = year.parse().map_err(|_| bad())?;
        let month: u8 = month.parse().map_err(|_| bad())?;
        if year.to_string().len() != 4 || !(1..=12).contains(&month) || text.trim().len() != 7 {
            return Err(bad());
        }
        Ok(Self { year, month })
    }

    pub fn next(self) -> Self {
        if self.month == 12 { Self { year: self.year + 1, month: 1 } } else { Self { year: self.year, month: self.month + 1 } }
    }

    pub fn previous(self) -> Self {
        if self.month == 1 { Self { year: self.year - 1, month: 12 } } else { Self { year: self.year, month: self.month - 1 } }
    }

    /// The first instant of the month.
    pub fn start(self) -> Timestamp {
        let month = time::Month::try_from(self.month).unwrap_or(time::Month::January);
        let date = Date::from_calendar_date(self.year, month, 1).unwrap_or(Date::MIN);
        Timestamp::from_unix(date.with_time(Time::MIDNIGHT).assume_utc().unix_timestamp())
    }

    /// The first instant after the month: when its usage resets.
    pub fn end(self) -> Timestamp {
        self.next().start()
    }

    /// `YYYYMM`, for invoice numbers.
    pub fn compact(self) -> String {
        format!("{:04}{:02}", self.year, self.month)
    }

    pub fn first_day(self) -> String {
        format!("{self}-01")
    }
}

impl fmt::Display for Month {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{:04}-{:02}", self.year, self.month)
    }
}

impl TryFrom<String> for Month {
    type Error = InvalidInput;
    fn try_from(value: String) -> Result<Self, Self::Error> {
        Self::parse(&value)
    }
}

impl From<Month> for String {
    fn from(value: Month) -> Self {
        value.to_string()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn months_from_instants_and_text() {
        let t = Timestamp::parse_rfc3339("2026-12-31T23:59:59Z").expect("instant");
        let december = Month::of(t);
        assert_eq!(december.to_string(), "2026-12");
        assert_eq!(december.next().to_string(), "2027-01");
        assert_eq!(Month::parse("2027-01").map(Month::previous), Ok(december));
        assert_eq!(december.start(), Timestamp::parse_rfc3339("2026-12-01T00:00:00Z").expect("instant"));
        assert_eq!(december.end(), Timestamp::parse_rfc3339("2027-01-01T00:00:00Z").expect("instant"));
        assert_eq!(Month::of(december.end()), december.next());
        assert_eq!(december.compact(), "202612");
        for bad in ["2026-13", "2026-1", "26-01", "2026/01", "", "2026-00"] {
            assert!(Month::parse(bad).is_err(), "{bad}");
        }
    }
}
