//! Placement constraints on the agents a task may run on.

use std::fmt;

use regex::Regex;

/// A compiled regex that compares by its source text.
#[derive(Debug, Clone)]
pub struct Pattern {
    regex: Regex,
    anchored: Regex,
}

impl Pattern {
    /// Compiles `source`; the error text is the regex crate's explanation.
    pub fn new(source: &str) -> Result<Pattern, String> {
        let regex = Regex::new(source).map_err(|e| e.to_string())?;
        let anchored = Regex::new(&format!("^(?:{source})$")).map_err(|e| e.to_string())?;
        Ok(Pattern { regex, anchored })
    }

    /// The source text.
    pub fn as_str(&self) -> &str {
        self.regex.as_str()
    }

    /// Whether the whole of `text` matches.
    pub fn matches_whole(&self, text: &str) -> bool {
        self.anchored.is_match(text)
    }

    /// Whether `text` contains a match.
    pub fn is_match(&self, text: &str) -> bool {
        self.regex.is_match(text)
    }
}

impl PartialEq for Pattern {
    fn eq(&self, other: &Self) -> bool {
        self.as_str() == other.as_str()
    }
}

/// Where a task may be placed. Written `hostname:unique`,
/// `<attribute>:equals:<value>` or `<attribute>:like:<regex>`
/// (`hostname` is the agent's hostname, anything else an agent attribute).
#[derive(Debug, Clone, PartialEq)]
pub enum Constraint {
    /// At most one task of this framework per host.
    UniqueHost,
    /// The attribute (or `hostname`) equals the value.
    AttributeEquals {
        /// The attribute name.
        name: String,
        /// The value it must have.
        value: String,
    },
    /// The attribute (or `hostname`) matches the regex as a whole.
    AttributeLike {
        /// The attribute name.
        name: String,
        /// The regex its whole value must match.
        pattern: Pattern,
    },
}

impl Constraint {
    /// Parses the textual form; the error says what is wrong.
    pub fn parse(text: &str) -> Result<Constraint, String> {
        let mut parts = text.splitn(3, ':');
        let name = parts.next().unwrap_or("").trim();
        let op = parts.next().map(|s| s.trim().to_ascii_lowercase());
        let arg = parts.next();
        if name.is_empty() {
            return Err(format!("constraint {text:?} has no attribute name"));
        }
        match (op.as_deref(), arg) {
            (Some("unique"), None) if name == "hostname" => Ok(Constraint::UniqueHost),
            (Some("unique"), _) => Err(format!(
                "constraint {text:?}: unique applies to hostname only (hostname:unique)"
            )),
            (Some("equals"), Some(value)) => Ok(Constraint::AttributeEquals {
                name: name.to_owned(),
                value: value.to_owned(),
            }),
            (Some("like"), Some(regex)) => Ok(Constraint::AttributeLike {
                name: name.to_owned(),
                pattern: Pattern::new(regex)
                    .map_err(|e| format!("constraint {text:?}: invalid regex: {e}"))?,
            }),
            _ => Err(format!(
                "constraint {text:?} is not hostname:unique, <attribute>:equals:<value> or <attribute>:like:<regex>"
            )),
        }
    }
}

impl fmt::Display for Constraint {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Constraint::UniqueHost => f.write_str("hostname:unique"),
            Constraint::AttributeEquals { name, value } => write!(f, "{name}:equals:{value}"),
            Constraint::AttributeLike { name, pattern } => {
                write!(f, "{name}:like:{}", pattern.as_str())
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_each_form() {
        assert_eq!(
            Constraint::parse("hostname:unique"),
            Ok(Constraint::UniqueHost)
        );
        assert_eq!(
            Constraint::parse("rack:equals:r1"),
            Ok(Constraint::AttributeEquals {
                name: "rack".into(),
                value: "r1".into()
            })
        );
        let like = Constraint::parse("zone:LIKE:eu-.*").expect("like");
        assert_eq!(like.to_string(), "zone:like:eu-.*");
    }

    #[test]
    fn refuses_bad_forms() {
        for (text, expected) in [
            ("rack:unique", "hostname only"),
            (":equals:x", "no attribute name"),
            ("rack:near:x", "is not"),
            ("rack", "is not"),
            ("zone:like:(", "invalid regex"),
        ] {
            let err = Constraint::parse(text).expect_err(text);
            assert!(err.contains(expected), "{text}: {err}");
        }
    }

    #[test]
    fn like_matches_whole_values() {
        let p = Pattern::new("eu-.*").expect("regex");
        assert!(p.matches_whole("eu-west"));
        assert!(!p.matches_whole("xeu-west"));
        let alt = Pattern::new("a|ab").expect("regex");
        assert!(alt.matches_whole("ab"));
    }
}
