//! The tutorial's text pipeline: `normalizeString`, reproduced exactly.

use unicode_general_category::{GeneralCategory, get_general_category};
use unicode_normalization::UnicodeNormalization;

/// The tutorial's `normalizeString`:
///
/// ```python
/// s = unicodeToAscii(s.lower().strip())   # NFD, then drop category Mn
/// s = re.sub(r"([.!?])", r" \1", s)
/// s = re.sub(r"[^a-zA-Z.!?]+", r" ", s)
/// s = re.sub(r"\s+", r" ", s).strip()
/// ```
///
/// The result holds only ASCII letters, `.`, `!`, `?` and single spaces.
pub fn normalize_string(s: &str) -> String {
    let mut spaced = String::with_capacity(s.len());
    let kept = s
        .to_lowercase()
        .nfd()
        .filter(|&c| get_general_category(c) != GeneralCategory::NonspacingMark)
        .collect::<String>();
    for c in kept.chars() {
        match c {
            'a'..='z' | 'A'..='Z' => spaced.push(c),
            '.' | '!' | '?' => {
                spaced.push(' ');
                spaced.push(c);
            }
            _ => spaced.push(' '),
        }
    }
    spaced.split_whitespace().collect::<Vec<_>>().join(" ")
}

#[cfg(test)]
mod tests {
    use super::normalize_string;

    #[test]
    fn punctuation_is_split_and_symbols_become_spaces() {
        assert_eq!(normalize_string("Hello, World!!"), "hello world ! !");
        assert_eq!(normalize_string("  What's up?\t"), "what s up ?");
        assert_eq!(normalize_string(""), "");
    }
}
