//! Who a dossier names, and whether it is still open: what a citizen lookup's purpose
//! check reads (a unit may ask the population register only about a person one of its
//! own dossiers names, for a dossier that is open or closed a short while ago).
//!
//! The dossier's record keeps the people as tags (a keyed hash of unit, dossier and
//! number), never the numbers: the record outlives the messages' retention, and a tag
//! answers "does this dossier name this person?" without keeping who they are.

use super::DossierTally;
use sha2::Digest;

/// Most people one dossier's record names; later ones are not added (a dossier with a
/// longer list of people is not a lookup's business case).
pub const MAX_PEOPLE: usize = 32;

/// An identity number as the population register keys it: the 12-digit số định danh or
/// the 9-digit CMND, with the spaces, dots and dashes people type taken out. Anything
/// else (a tax code has 10 or 13 digits, a phone 10) is not a person's number.
pub fn normalize(value: &str) -> Option<String> {
    if value.len() > 40 {
        return None;
    }
    let digits: String = value
        .chars()
        .filter(|c| !matches!(c, ' ' | '.' | '-'))
        .collect();
    (matches!(digits.len(), 9 | 12) && digits.bytes().all(|b| b.is_ascii_digit())).then_some(digits)
}

/// Every identity number in an event's JSON text as received (its string values at any
/// depth, never an object's key), at most [`MAX_PEOPLE`]: the applicant, a representative,
/// the people a dossier lists, in whatever field the unit's format puts them. One pass
/// over the bytes, no document built: the outbox reads it of each keyed event.
pub fn scan_json(json: &str, out: &mut Vec<String>) {
    let b = json.as_bytes();
    let mut i = 0;
    while i < b.len() && out.len() < MAX_PEOPLE {
        if b[i] != b'"' {
            i += 1;
            continue;
        }
        let start = i + 1;
        let mut end = start;
        let mut escaped = false;
        while end < b.len() && b[end] != b'"' {
            if b[end] == b'\\' {
                escaped = true;
                end += 1;
            }
            end += 1;
        }
        let end = end.min(b.len());
        i = end + 1;
        // A string followed by `:` is an object's key.
        let after = b[i.min(b.len())..]
            .iter()
            .find(|c| !c.is_ascii_whitespace());
        if after == Some(&b':') || end - start > 240 {
            continue;
        }
        let text = if escaped {
            match serde_json::from_str::<String>(&json[start - 1..=end.min(b.len() - 1)]) {
                Ok(t) => std::borrow::Cow::Owned(t),
                Err(_) => continue,
            }
        } else {
            std::borrow::Cow::Borrowed(&json[start..end])
        };
        if let Some(n) = normalize(&text)
            && !out.contains(&n)
        {
            out.push(n);
        }
    }
}

/// A person's tag in one dossier's record.
pub fn tag(unit: &str, dossier: &str, person: &str) -> u64 {
    let mut h = sha2::Sha256::new();
    for part in [unit, dossier, person] {
        h.update(part.as_bytes());
        h.update([0]);
    }
    u64::from_be_bytes(h.finalize()[..8].try_into().expect("8 bytes"))
}

impl DossierTally {
    pub(super) fn add_people(&mut self, people: &[String]) {
        for person in people {
            if self.people.len() >= MAX_PEOPLE {
                return;
            }
            let t = tag(&self.unit, &self.dossier, person);
            if !self.people.contains(&t) {
                self.people.push(t);
            }
        }
    }

    /// Tags another node computed of its event's people ([`super::shared`]).
    pub(super) fn add_tags(&mut self, tags: &[u64]) {
        for t in tags {
            if self.people.len() >= MAX_PEOPLE {
                return;
            }
            if !self.people.contains(t) {
                self.people.push(*t);
            }
        }
    }

    /// Whether one of the dossier's events named this person (a number as
    /// [`normalize`] gives it).
    pub fn names(&self, person: &str) -> bool {
        self.people
            .contains(&tag(&self.unit, &self.dossier, person))
    }

    /// Whether the dossier is open on `today`, or closed at most `window_days` before
    /// (days as [`super::day_of`] counts them). A dossier closed before the day was kept
    /// counts as closed long ago.
    pub fn open_within(&self, today: u32, window_days: u32) -> bool {
        !self.closed
            || self
                .closed_day
                .is_some_and(|day| today <= day.saturating_add(window_days))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn identity_numbers_are_twelve_or_nine_digits_as_typed() {
        assert_eq!(normalize("0010 4028 5821").as_deref(), Some("001040285821"));
        assert_eq!(normalize("012.345.678").as_deref(), Some("012345678"));
        assert_eq!(normalize("0100308695"), None, "a tax code");
        assert_eq!(normalize("0912345678"), None, "a phone");
        assert_eq!(normalize("00104028582x"), None);
    }

    #[test]
    fn a_dossier_names_the_people_of_its_events_and_no_one_else() {
        let mut people = Vec::new();
        let event = serde_json::json!({"applicant": {"idNumber": "0010 4014 4502", "phone": "0912345678"},
            "members": [{"oldId": "012345678"}], "taxCode": "0100308695"});
        scan_json(&event.to_string(), &mut people);
        assert_eq!(people, ["001040144502", "012345678"]);
        // The same read from the text as received, escapes and keys included.
        let mut from_text = Vec::new();
        let text = r#"{"applicant": {"idNumber": "0010 4014 4502", "phone": "0912345678",
            "001040144599": "a key, not a person"}, "note": "say \"hi\"",
            "members": [{"oldId": "\u0030\u0031\u0032345678"}], "taxCode": "0100308695"}"#;
        scan_json(text, &mut from_text);
        assert_eq!(from_text, ["001040144502", "012345678"]);
        let mut d = DossierTally {
            unit: "naf".into(),
            dossier: "HS-1".into(),
            ..Default::default()
        };
        d.add_people(&people);
        assert!(d.names("001040144502") && d.names("012345678"));
        assert!(!d.names("001040144503"));
        // The same person in another dossier has another tag.
        let other = DossierTally {
            unit: "naf".into(),
            dossier: "HS-2".into(),
            people: d.people.clone(),
            ..Default::default()
        };
        assert!(!other.names("001040144502"));
    }

    #[test]
    fn a_closed_dossier_stays_askable_for_its_window() {
        let mut d = DossierTally::default();
        assert!(d.open_within(100, 0));
        d.closed = true;
        assert!(!d.open_within(100, 30), "closed on an unknown day");
        d.closed_day = Some(100);
        assert!(d.open_within(130, 30) && !d.open_within(131, 30));
    }
}
