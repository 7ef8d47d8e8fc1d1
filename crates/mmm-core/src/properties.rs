//! A parser of Java `.properties` files, following `java.util.Properties.load`:
//! `#` and `!` comments, `=`, `:` or whitespace separators, line
//! continuations, backslash escapes and `\uXXXX`.

/// A parsed properties file: its entries in the order they first appear.
/// A repeated key keeps its first position and takes its last value, as Java does.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Properties {
    entries: Vec<(String, String)>,
}

/// A properties file that cannot be read.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum PropertiesError {
    /// A `\u` escape not followed by four hex digits.
    #[error("{file}:{line}: malformed \\uXXXX escape {found:?} (expected four hex digits)")]
    BadUnicodeEscape {
        /// The file name given by the caller.
        file: String,
        /// The 1-based line of the escape.
        line: usize,
        /// What followed `\u`.
        found: String,
    },
    /// A `\uXXXX` escape naming no character (a lone surrogate).
    #[error("{file}:{line}: \\u{code:04X} is not a character")]
    NotACharacter {
        /// The file name given by the caller.
        file: String,
        /// The 1-based line of the escape.
        line: usize,
        /// The code unit.
        code: u32,
    },
}

impl Properties {
    /// Parses `text`; `file` names the source in error messages.
    pub fn parse(file: &str, text: &str) -> Result<Properties, PropertiesError> {
        let mut props = Properties::default();
        for logical in logical_lines(text) {
            let (key, value) = split_entry(file, &logical)?;
            props.insert(key, value);
        }
        Ok(props)
    }

    /// Sets `key`, keeping its first position when it exists.
    pub fn insert(&mut self, key: String, value: String) {
        if let Some(entry) = self.entries.iter_mut().find(|(k, _)| *k == key) {
            entry.1 = value;
        } else {
            self.entries.push((key, value));
        }
    }

    /// The value of `key`.
    pub fn get(&self, key: &str) -> Option<&str> {
        self.entries
            .iter()
            .find(|(k, _)| k == key)
            .map(|(_, v)| v.as_str())
    }

    /// The entries in file order.
    pub fn entries(&self) -> &[(String, String)] {
        &self.entries
    }

    /// The entries in file order, as string pairs.
    pub fn iter(&self) -> impl Iterator<Item = (&str, &str)> {
        self.entries.iter().map(|(k, v)| (k.as_str(), v.as_str()))
    }

    /// How many keys.
    pub fn len(&self) -> usize {
        self.entries.len()
    }

    /// Whether there are no keys.
    pub fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }
}

/// A character of a logical line with the natural line it came from.
type Located = (char, usize);

fn is_blank(c: char) -> bool {
    matches!(c, ' ' | '\t' | '\u{c}')
}

/// Joins continued natural lines into logical lines, dropping blank and
/// comment lines and the leading whitespace of every natural line.
fn logical_lines(text: &str) -> Vec<Vec<Located>> {
    let mut out = Vec::new();
    let mut current: Vec<Located> = Vec::new();
    let mut continuing = false;
    for (index, natural) in natural_lines(text).into_iter().enumerate() {
        let line_no = index + 1;
        let trimmed = natural.trim_start_matches(is_blank);
        if !continuing
            && (trimmed.is_empty() || trimmed.starts_with('#') || trimmed.starts_with('!'))
        {
            continue;
        }
        let trailing = trimmed.chars().rev().take_while(|&c| c == '\\').count();
        let continues = trailing % 2 == 1;
        let body = if continues {
            &trimmed[..trimmed.len() - 1]
        } else {
            trimmed
        };
        current.extend(body.chars().map(|c| (c, line_no)));
        continuing = continues;
        if !continuing {
            out.push(std::mem::take(&mut current));
        }
    }
    // a continuation at the end of the input ends the last entry
    if continuing {
        out.push(current);
    }
    out
}

/// Splits on `\n`, `\r\n` and `\r`, as Java's LineReader does.
fn natural_lines(text: &str) -> Vec<&str> {
    let mut lines = Vec::new();
    let mut start = 0;
    let bytes = text.as_bytes();
    let mut i = 0;
    while i < bytes.len() {
        match bytes[i] {
            b'\n' => {
                lines.push(&text[start..i]);
                start = i + 1;
            }
            b'\r' => {
                lines.push(&text[start..i]);
                if bytes.get(i + 1) == Some(&b'\n') {
                    i += 1;
                }
                start = i + 1;
            }
            _ => {}
        }
        i += 1;
    }
    if start < text.len() {
        lines.push(&text[start..]);
    }
    lines
}

fn split_entry(file: &str, line: &[Located]) -> Result<(String, String), PropertiesError> {
    // the key ends at the first unescaped separator
    let mut key_end = line.len();
    let mut escaped = false;
    for (i, &(c, _)) in line.iter().enumerate() {
        if escaped {
            escaped = false;
            continue;
        }
        if c == '\\' {
            escaped = true;
        } else if c == '=' || c == ':' || is_blank(c) {
            key_end = i;
            break;
        }
    }
    let mut value_start = key_end;
    while value_start < line.len() && is_blank(line[value_start].0) {
        value_start += 1;
    }
    if value_start < line.len() && matches!(line[value_start].0, '=' | ':') {
        value_start += 1;
        while value_start < line.len() && is_blank(line[value_start].0) {
            value_start += 1;
        }
    }
    let key = unescape(file, &line[..key_end])?;
    let value = unescape(file, &line[value_start..])?;
    Ok((key, value))
}

fn unescape(file: &str, chars: &[Located]) -> Result<String, PropertiesError> {
    let mut out = String::with_capacity(chars.len());
    let mut i = 0;
    while i < chars.len() {
        let (c, line) = chars[i];
        i += 1;
        if c != '\\' {
            out.push(c);
            continue;
        }
        let Some(&(next, _)) = chars.get(i) else {
            break;
        };
        i += 1;
        match next {
            't' => out.push('\t'),
            'n' => out.push('\n'),
            'r' => out.push('\r'),
            'f' => out.push('\u{c}'),
            'u' => {
                let hex: String = chars[i..].iter().take(4).map(|&(c, _)| c).collect();
                let code = (hex.len() == 4 && hex.chars().all(|c| c.is_ascii_hexdigit()))
                    .then(|| u32::from_str_radix(&hex, 16).ok())
                    .flatten()
                    .ok_or_else(|| PropertiesError::BadUnicodeEscape {
                        file: file.to_owned(),
                        line,
                        found: hex.clone(),
                    })?;
                i += 4;
                out.push(decode_utf16_unit(file, line, code, chars, &mut i)?);
            }
            other => out.push(other),
        }
    }
    Ok(out)
}

/// Decodes one UTF-16 code unit, pairing a high surrogate with a following
/// `\uDCxx` escape the way Java strings hold characters beyond the BMP.
fn decode_utf16_unit(
    file: &str,
    line: usize,
    code: u32,
    chars: &[Located],
    i: &mut usize,
) -> Result<char, PropertiesError> {
    let not_a_char = || PropertiesError::NotACharacter {
        file: file.to_owned(),
        line,
        code,
    };
    if (0xD800..0xDC00).contains(&code) {
        let rest: String = chars[*i..].iter().take(6).map(|&(c, _)| c).collect();
        let low = rest
            .strip_prefix("\\u")
            .filter(|h| h.len() == 4)
            .and_then(|h| u32::from_str_radix(h, 16).ok())
            .filter(|l| (0xDC00..0xE000).contains(l))
            .ok_or_else(not_a_char)?;
        *i += 6;
        let scalar = 0x10000 + ((code - 0xD800) << 10) + (low - 0xDC00);
        return char::from_u32(scalar).ok_or_else(not_a_char);
    }
    char::from_u32(code).ok_or_else(not_a_char)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(text: &str) -> Vec<(String, String)> {
        Properties::parse("t.properties", text)
            .expect("parses")
            .entries()
            .to_vec()
    }

    fn pairs(list: &[(&str, &str)]) -> Vec<(String, String)> {
        list.iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect()
    }

    #[test]
    fn separators_equals_colon_and_whitespace() {
        assert_eq!(
            parse("a=1\nb:2\nc 3\nd\t4\ne = 5\nf : 6\ng   =   7\nh\n"),
            pairs(&[
                ("a", "1"),
                ("b", "2"),
                ("c", "3"),
                ("d", "4"),
                ("e", "5"),
                ("f", "6"),
                ("g", "7"),
                ("h", "")
            ])
        );
    }

    #[test]
    fn only_the_first_separator_splits() {
        assert_eq!(
            parse("url=http://h:1/p?a=b\nx: y=z\nk  v w"),
            pairs(&[("url", "http://h:1/p?a=b"), ("x", "y=z"), ("k", "v w")])
        );
    }

    #[test]
    fn comments_with_hash_and_bang_at_line_start() {
        assert_eq!(
            parse("# c\n! c\n   # indented comment\na=1 # not a comment\n#b=2\n"),
            pairs(&[("a", "1 # not a comment")])
        );
    }

    #[test]
    fn comment_lines_do_not_continue() {
        assert_eq!(parse("# comment \\\na=1"), pairs(&[("a", "1")]));
    }

    #[test]
    fn blank_lines_and_leading_whitespace_are_skipped() {
        assert_eq!(
            parse("\n   \n\t\u{c}key = value\n\n"),
            pairs(&[("key", "value")])
        );
    }

    #[test]
    fn trailing_whitespace_of_values_is_kept_as_java_does() {
        assert_eq!(parse("a=1  \n"), pairs(&[("a", "1  ")]));
    }

    #[test]
    fn continuations_drop_the_next_lines_leading_whitespace() {
        assert_eq!(
            parse("list=a,\\\n    b,\\\n\tc\nnext=1"),
            pairs(&[("list", "a,b,c"), ("next", "1")])
        );
    }

    #[test]
    fn an_even_number_of_backslashes_does_not_continue() {
        assert_eq!(parse("a=x\\\\\nb=y"), pairs(&[("a", "x\\"), ("b", "y")]));
    }

    #[test]
    fn a_continuation_at_end_of_input_ends_the_entry() {
        assert_eq!(parse("a=x\\"), pairs(&[("a", "x")]));
    }

    #[test]
    fn a_continued_line_may_be_a_comment_lookalike() {
        assert_eq!(parse("a=x\\\n  #y"), pairs(&[("a", "x#y")]));
    }

    #[test]
    fn line_terminators_cr_lf_and_crlf() {
        assert_eq!(
            parse("a=1\r\nb=2\rc=3\nd=\\\r\n  4"),
            pairs(&[("a", "1"), ("b", "2"), ("c", "3"), ("d", "4")])
        );
    }

    #[test]
    fn escapes_in_keys_and_values() {
        assert_eq!(
            parse("my\\ key\\=x\\:y = tab\\there\\nnl\\rcr\\fff\\\\bs\\q"),
            pairs(&[("my key=x:y", "tab\there\nnl\rcr\u{c}ff\\bsq")])
        );
    }

    #[test]
    fn unicode_escapes_including_surrogate_pairs() {
        assert_eq!(
            parse("k\\u00e9y=caf\\u00E9 \\uD83D\\uDE00"),
            pairs(&[("kéy", "café 😀")])
        );
    }

    #[test]
    fn bad_unicode_escape_names_file_and_line() {
        let err = Properties::parse("c.properties", "a=1\n\nb=\\u12G4\n").expect_err("bad");
        assert_eq!(
            err,
            PropertiesError::BadUnicodeEscape {
                file: "c.properties".into(),
                line: 3,
                found: "12G4".into()
            }
        );
        assert!(err
            .to_string()
            .starts_with("c.properties:3: malformed \\uXXXX"));
        let short = Properties::parse("c.properties", "a=\\u12").expect_err("short");
        assert!(short.to_string().contains("\"12\""), "{short}");
    }

    #[test]
    fn bad_unicode_escape_on_a_continued_line_names_that_line() {
        let err = Properties::parse("c.properties", "a=1,\\\n  \\uZZZZ").expect_err("bad");
        assert!(err.to_string().starts_with("c.properties:2:"), "{err}");
    }

    #[test]
    fn lone_surrogate_is_an_error() {
        let err = Properties::parse("c.properties", "a=\\uD800x").expect_err("lone");
        assert!(
            err.to_string().contains("\\uD800 is not a character"),
            "{err}"
        );
    }

    #[test]
    fn repeated_keys_keep_first_position_and_last_value() {
        let props = Properties::parse("t", "a=1\nb=2\na=3").expect("parses");
        assert_eq!(props.entries(), &pairs(&[("a", "3"), ("b", "2")])[..]);
        assert_eq!(props.get("a"), Some("3"));
        assert_eq!(props.get("zz"), None);
        assert_eq!(props.len(), 2);
    }

    proptest::proptest! {
        #[test]
        fn never_panics_on_arbitrary_input(text in "\\PC*") {
            let _ = Properties::parse("p", &text);
        }

        #[test]
        fn never_panics_on_properties_like_input(
            text in "([ \t#!=:\\\\a-z\r\nu0-9DdEe]|\\\\u[0-9a-fA-FgG]{0,4}){0,80}"
        ) {
            let _ = Properties::parse("p", &text);
        }

        #[test]
        fn simple_pairs_round_trip(key in "[a-z][a-z.]{0,10}", value in "[a-zA-Z0-9,.:/=]{0,20}") {
            let props = Properties::parse("p", &format!("{key}={value}")).expect("parses");
            proptest::prop_assert_eq!(props.get(&key), Some(value.as_str()));
        }
    }
}
