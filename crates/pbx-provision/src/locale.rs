//! Time zone and language in the spellings each brand wants.
//!
//! Phones do not take IANA names: Yealink wants an offset plus its own city label, Polycom a
//! GMT offset in seconds, Grandstream and Snom a POSIX TZ rule, Cisco a Windows zone name.
//! The table covers the zones a European provider meets; any other valid IANA zone falls back
//! to its current UTC offset (and a POSIX rule without daylight saving).

use jiff::Timestamp;
use jiff::tz::TimeZone;
use serde::Serialize;

/// IANA name, POSIX rule, Windows name, Yealink label.
const ZONES: &[(&str, &str, &str, &str)] = &[
    (
        "Europe/Amsterdam",
        "CET-1CEST,M3.5.0,M10.5.0/3",
        "W. Europe Standard Time",
        "Netherlands(Amsterdam)",
    ),
    (
        "Europe/Brussels",
        "CET-1CEST,M3.5.0,M10.5.0/3",
        "Romance Standard Time",
        "Belgium(Brussels)",
    ),
    (
        "Europe/Berlin",
        "CET-1CEST,M3.5.0,M10.5.0/3",
        "W. Europe Standard Time",
        "Germany(Berlin)",
    ),
    (
        "Europe/Paris",
        "CET-1CEST,M3.5.0,M10.5.0/3",
        "Romance Standard Time",
        "France(Paris)",
    ),
    (
        "Europe/Madrid",
        "CET-1CEST,M3.5.0,M10.5.0/3",
        "Romance Standard Time",
        "Spain(Madrid)",
    ),
    (
        "Europe/Rome",
        "CET-1CEST,M3.5.0,M10.5.0/3",
        "W. Europe Standard Time",
        "Italy(Rome)",
    ),
    (
        "Europe/Luxembourg",
        "CET-1CEST,M3.5.0,M10.5.0/3",
        "W. Europe Standard Time",
        "Luxembourg(Luxembourg)",
    ),
    (
        "Europe/London",
        "GMT0BST,M3.5.0/1,M10.5.0",
        "GMT Standard Time",
        "United Kingdom(London)",
    ),
    (
        "Europe/Dublin",
        "IST-1GMT0,M10.5.0,M3.5.0/1",
        "GMT Standard Time",
        "Ireland(Dublin)",
    ),
    (
        "Europe/Lisbon",
        "WET0WEST,M3.5.0/1,M10.5.0",
        "GMT Standard Time",
        "Portugal(Lisboa)",
    ),
    (
        "Europe/Helsinki",
        "EET-2EEST,M3.5.0/3,M10.5.0/4",
        "FLE Standard Time",
        "Finland(Helsinki)",
    ),
    ("UTC", "UTC0", "UTC", "UTC"),
];

/// Language code, Yealink, Polycom, Snom, Grandstream, Cisco spellings.
const LANGUAGES: &[(&str, &str, &str, &str, &str, &str)] = &[
    (
        "en",
        "English",
        "English_United_Kingdom",
        "English",
        "en",
        "English_United_States",
    ),
    (
        "nl",
        "Dutch",
        "Dutch_Netherlands",
        "Dutch",
        "nl",
        "Dutch_Netherlands",
    ),
    (
        "de",
        "German",
        "German_Germany",
        "Deutsch",
        "de",
        "German_Germany",
    ),
    (
        "fr",
        "French",
        "French_France",
        "Francais",
        "fr",
        "French_France",
    ),
    (
        "es",
        "Spanish",
        "Spanish_Spain",
        "Espanol",
        "es",
        "Spanish_Spain",
    ),
    (
        "it",
        "Italian",
        "Italian_Italy",
        "Italiano",
        "it",
        "Italian_Italy",
    ),
];

/// The language codes templates know (the API refuses others).
pub fn supported_languages() -> impl Iterator<Item = &'static str> {
    LANGUAGES.iter().map(|row| row.0)
}

/// A time zone in every brand's spelling.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct ZoneSpellings {
    /// IANA name (`Europe/Amsterdam`).
    pub name: String,
    /// POSIX TZ rule (`CET-1CEST,M3.5.0,M10.5.0/3`).
    pub posix: String,
    /// Windows zone name (Cisco).
    pub windows: String,
    /// Yealink's city label (empty when unknown: the phone then uses the offset alone).
    pub yealink: String,
    /// Standard-time offset from UTC in seconds (Polycom `gmtOffset`).
    pub offset_secs: i32,
    /// The offset in hours as Yealink writes it (`+1`, `-3.5`, `0`).
    pub offset_hours: String,
    /// Whether the zone has daylight saving rules.
    pub dst: bool,
}

impl ZoneSpellings {
    /// Spellings of an IANA zone; `None` when the name is not a known zone.
    pub fn of(name: &str) -> Option<Self> {
        let zone = TimeZone::get(name).ok()?;
        if let Some(&(iana, posix, windows, yealink)) = ZONES.iter().find(|row| row.0 == name) {
            let offset = standard_offset(posix);
            return Some(Self {
                name: iana.to_owned(),
                posix: posix.to_owned(),
                windows: windows.to_owned(),
                yealink: yealink.to_owned(),
                offset_secs: offset,
                offset_hours: hours(offset),
                dst: posix.contains(','),
            });
        }
        let offset = zone.to_offset(Timestamp::now()).seconds();
        let posix_sign = if offset > 0 { "-" } else { "+" };
        let abs = offset.unsigned_abs();
        let posix = if abs % 3600 == 0 {
            format!("UTC{posix_sign}{}", abs / 3600)
        } else {
            format!("UTC{posix_sign}{}:{:02}", abs / 3600, abs % 3600 / 60)
        };
        Some(Self {
            name: name.to_owned(),
            posix,
            windows: "UTC".to_owned(),
            yealink: String::new(),
            offset_secs: offset,
            offset_hours: hours(offset),
            dst: false,
        })
    }
}

/// The standard offset (seconds east of UTC) of a table rule: `CET-1...` is +3600.
fn standard_offset(posix: &str) -> i32 {
    let rest = posix.trim_start_matches(|c: char| c.is_ascii_alphabetic());
    let digits: String = rest
        .chars()
        .take_while(|c| c.is_ascii_digit() || *c == '-' || *c == '+')
        .collect();
    digits.parse::<i32>().map_or(0, |hours| -hours * 3600)
}

fn hours(offset: i32) -> String {
    let sign = if offset > 0 { "+" } else { "" };
    if offset % 3600 == 0 {
        format!("{sign}{}", offset / 3600)
    } else {
        format!("{sign}{}", f64::from(offset) / 3600.0)
    }
}

/// A language in every brand's spelling.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct LanguageSpellings {
    /// ISO 639-1 code.
    pub code: String,
    /// Yealink `lang.gui`.
    pub yealink: String,
    /// Polycom `lcl.ml.lang`.
    pub polycom: String,
    /// Snom `language`.
    pub snom: String,
    /// Grandstream language code.
    pub grandstream: String,
    /// Cisco `userLocale` name.
    pub cisco: String,
}

impl LanguageSpellings {
    /// Spellings of a supported language code; `None` for others.
    pub fn of(code: &str) -> Option<Self> {
        let code = code.to_ascii_lowercase();
        LANGUAGES.iter().find(|row| row.0 == code).map(
            |&(code, yealink, polycom, snom, gs, cisco)| Self {
                code: code.to_owned(),
                yealink: yealink.to_owned(),
                polycom: polycom.to_owned(),
                snom: snom.to_owned(),
                grandstream: gs.to_owned(),
                cisco: cisco.to_owned(),
            },
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn amsterdam_in_every_spelling() {
        let zone = ZoneSpellings::of("Europe/Amsterdam").unwrap();
        assert_eq!(zone.offset_secs, 3600);
        assert_eq!(zone.offset_hours, "+1");
        assert_eq!(zone.windows, "W. Europe Standard Time");
        assert!(zone.dst);
        assert_eq!(ZoneSpellings::of("Europe/London").unwrap().offset_secs, 0);
        assert_eq!(
            ZoneSpellings::of("Europe/London").unwrap().offset_hours,
            "0"
        );
        assert_eq!(ZoneSpellings::of("Mars/Olympus"), None);
    }

    #[test]
    fn zones_outside_the_table_fall_back_to_their_offset() {
        let kolkata = ZoneSpellings::of("Asia/Kolkata").unwrap();
        assert_eq!(kolkata.offset_secs, 19_800);
        assert_eq!(kolkata.posix, "UTC-5:30");
        assert_eq!(kolkata.offset_hours, "+5.5");
        let new_york = ZoneSpellings::of("America/New_York").unwrap();
        assert!(new_york.posix.starts_with("UTC+"));
    }

    #[test]
    fn languages() {
        assert_eq!(LanguageSpellings::of("NL").unwrap().yealink, "Dutch");
        assert_eq!(LanguageSpellings::of("xx"), None);
        assert_eq!(supported_languages().count(), LANGUAGES.len());
    }
}
