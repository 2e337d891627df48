//! The region a number without a country code is read in.

use std::{fmt, str::FromStr};

use phonenumber::country;

/// A region (CLDR / ISO 3166 code such as `JP`) whose national numbering
/// plan applies to numbers written without a country code.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct Region(country::Id);

impl Region {
    /// Japan (`JP`, country code 81): where Front Agent's customers are, and
    /// so the default for numbers stored without `+81`.
    pub const JAPAN: Region = Region(country::Id::JP);

    pub(crate) fn id(self) -> country::Id {
        self.0
    }
}

impl Default for Region {
    fn default() -> Self {
        Region::JAPAN
    }
}

/// Shows the region code, e.g. `JP`.
impl fmt::Display for Region {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.0.as_ref())
    }
}

/// A region code that libphonenumber does not know (e.g. from configuration).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("unknown phone region {code:?}: use a two-letter region code such as \"JP\"")]
pub struct UnknownRegion {
    code: String,
}

impl FromStr for Region {
    type Err = UnknownRegion;

    /// Reads a region code such as `JP` (case-insensitive).
    fn from_str(code: &str) -> Result<Self, Self::Err> {
        code.trim()
            .to_ascii_uppercase()
            .parse::<country::Id>()
            .map(Region)
            .map_err(|_| UnknownRegion { code: code.to_owned() })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn regions_read_from_their_codes() {
        assert_eq!("JP".parse::<Region>(), Ok(Region::JAPAN));
        assert_eq!(" jp ".parse::<Region>(), Ok(Region::JAPAN));
        assert_eq!(Region::default(), Region::JAPAN);
        assert_eq!(Region::JAPAN.to_string(), "JP");
        assert!("Japan".parse::<Region>().is_err());
        assert!("".parse::<Region>().is_err());
    }
}
