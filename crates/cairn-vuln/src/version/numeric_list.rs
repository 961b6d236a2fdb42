//! Orderings that are plain lists of numbers: Hackage (Haskell PVP, `Data.Version`)
//! splits on `.`; CRAN (R's `package_version`) splits on `.` and `-`. Lists
//! compare element by element; a longer list with an equal prefix is greater
//! (`1.0 < 1.0.0`, `0.1.0 < 0.1.0.0`).

use super::num::{Num, all_digits};
use super::{Scheme, VersionError};

pub(crate) fn parse(scheme: Scheme, s: &str) -> Result<Vec<Num>, VersionError> {
    let t = s.trim();
    let seps: &[char] = match scheme {
        Scheme::Cran => &['.', '-'],
        _ => &['.'],
    };
    t.split(seps)
        .map(|p| {
            if all_digits(p) {
                Ok(Num::new(p))
            } else {
                Err(VersionError::invalid(
                    scheme,
                    s,
                    "component is not a number",
                ))
            }
        })
        .collect()
}
