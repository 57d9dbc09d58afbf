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

/// The words of a reply (as the tutorial's vocabulary holds them: lower case, contractions
/// split by `normalize_string`, punctuation as words) as a person writes them: contractions
/// joined ("i m" → "I'm", "don t" → "don't", "you re" → "you're"), "i" as "I", a capital
/// at the start of each sentence, and no space before `.`, `!` or `?`.
pub fn readable(reply: &str) -> String {
    let mut words: Vec<String> = Vec::new();
    for word in reply.split_whitespace() {
        let joins = match (words.last(), word) {
            (Some(prev), "t") => prev.ends_with('n'),
            (Some(prev), "m" | "s" | "re" | "ll" | "ve" | "d") => {
                prev.chars().all(|c| c.is_ascii_alphabetic())
            }
            _ => false,
        };
        match words.last_mut() {
            Some(prev) if joins => {
                prev.push('\'');
                prev.push_str(word);
            }
            _ => words.push(word.to_string()),
        }
    }
    let mut text = String::with_capacity(reply.len());
    let mut sentence_start = true;
    for word in &words {
        let is_punct = matches!(word.as_str(), "." | "!" | "?");
        if !text.is_empty() && !is_punct {
            text.push(' ');
        }
        let is_i = word == "i" || word.starts_with("i'");
        let mut chars = word.chars();
        match chars.next() {
            Some(first) if sentence_start || is_i => {
                text.extend(first.to_uppercase());
                text.push_str(chars.as_str());
            }
            _ => text.push_str(word),
        }
        sentence_start = is_punct;
    }
    text
}

#[cfg(test)]
mod tests {
    use super::{normalize_string, readable};

    #[test]
    fn punctuation_is_split_and_symbols_become_spaces() {
        assert_eq!(normalize_string("Hello, World!!"), "hello world ! !");
        assert_eq!(normalize_string("  What's up?\t"), "what s up ?");
        assert_eq!(normalize_string(""), "");
    }

    #[test]
    fn replies_read_as_a_person_writes_them() {
        assert_eq!(readable("i m doing well ."), "I'm doing well.");
        assert_eq!(readable("you re welcome !"), "You're welcome!");
        assert_eq!(
            readable("i don t know . what s up ?"),
            "I don't know. What's up?"
        );
        assert_eq!(
            readable("it s ok i can t . i ll try"),
            "It's ok I can't. I'll try"
        );
        assert_eq!(readable("we ve got it they d go"), "We've got it they'd go");
        assert_eq!(
            readable("are you a bot ? ? yes ! !"),
            "Are you a bot?? Yes!!"
        );
        assert_eq!(readable("i ve been to india"), "I've been to india");
        // A lone "t" or "s" after a word it cannot belong to stays a word.
        assert_eq!(readable("the letter t"), "The letter t");
        assert_eq!(readable(". s"), ". S");
        assert_eq!(readable(""), "");
    }
}
