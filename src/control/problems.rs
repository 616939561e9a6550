//! What is wrong with a set of `proxy` flags taken together, every problem at once, each
//! tied to the flags it concerns: `proxy` prints them all, `check-config` puts each on the
//! line of the first of its keys that the file sets.

use std::fmt;

/// One problem, and the flags (long names, no dashes) it concerns, the most to blame first.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Problem {
    pub flags: Vec<&'static str>,
    pub message: String,
}

/// Every problem found, in the order found; [`fmt::Display`] is one a line.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Problems(pub Vec<Problem>);

impl Problems {
    /// Records a problem with `flags`.
    pub fn push(&mut self, flags: &[&'static str], message: impl fmt::Display) {
        self.0.push(Problem {
            flags: flags.to_vec(),
            message: message.to_string(),
        });
    }

    /// The value, or `None` with the error recorded against `flags`.
    pub fn take<T, E: fmt::Display>(
        &mut self,
        flags: &[&'static str],
        result: Result<T, E>,
    ) -> Option<T> {
        result.map_err(|e| self.push(flags, format!("{e:#}"))).ok()
    }

    /// `value` if nothing was recorded, else every problem.
    pub fn or_value<T>(self, value: T) -> Result<T, Problems> {
        if self.0.is_empty() {
            Ok(value)
        } else {
            Err(self)
        }
    }
}

impl fmt::Display for Problems {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for (i, p) in self.0.iter().enumerate() {
            if i > 0 {
                writeln!(f)?;
            }
            f.write_str(&p.message)?;
        }
        Ok(())
    }
}

impl std::error::Error for Problems {}
