//! The national databases consulted for a dossier, sent to the portal in the dossier's row
//! as `DSKetNoiCSDL[{MaCSDL}]`: the portal's service index (Decision 766) counts dossiers
//! whose data was taken from the national databases instead of asked of the applicant.
//!
//! A unit's officer asks the population database or the business registry through the
//! bus's lookups, naming the dossier (`?dossier=`); a lookup the database answered (found
//! or not) notes the database against the dossier, and the portal connector adds what is
//! noted to every row of that dossier it sends. Notes are keyed by the dossier's code
//! alone (the units' codes carry their own prefixes), kept for `outbox.note_retention`.
//!
//! The `MaCSDL` codes are assumed: the portal's list of national database codes is not
//! public.

use crate::outbox::{Notes, StoreError};
use serde_json::{Value, json};

/// The national population database (CSDL quốc gia về dân cư); assumed code.
pub const POPULATION: &str = "CSDLQGDC";
/// The national business registration database (CSDL quốc gia về đăng ký doanh nghiệp);
/// assumed code.
pub const BUSINESS: &str = "CSDLQGDKDN";

fn note_name(dossier: &str) -> String {
    format!("consulted/{dossier}")
}

/// The databases noted for `dossier`, in the order first consulted.
pub fn consulted(notes: &dyn Notes, dossier: &str) -> Result<Vec<String>, StoreError> {
    Ok(notes
        .get_note(&note_name(dossier))?
        .and_then(|bytes| serde_json::from_slice(&bytes).ok())
        .unwrap_or_default())
}

/// Note that database `code` was consulted for `dossier` (once: a second lookup of the
/// same database writes nothing).
pub fn note(notes: &dyn Notes, dossier: &str, code: &str) -> Result<(), StoreError> {
    let mut codes = consulted(notes, dossier)?;
    if codes.iter().any(|c| c == code) {
        return Ok(());
    }
    codes.push(code.to_string());
    let value = serde_json::to_vec(&codes).expect("a list of strings serialises");
    notes.put_note(&note_name(dossier), &value)
}

/// `row` with each of `codes` in its `DSKetNoiCSDL` (what the unit sent stays).
pub fn add_to_row(row: &mut Value, codes: &[String]) {
    if codes.is_empty() {
        return;
    }
    let Some(fields) = row.as_object_mut() else {
        return;
    };
    let list = fields
        .entry("DSKetNoiCSDL")
        .or_insert_with(|| Value::Array(Vec::new()));
    if !list.is_array() {
        *list = Value::Array(Vec::new());
    }
    let items = list.as_array_mut().expect("made an array above");
    for code in codes {
        if !items.iter().any(|i| i["MaCSDL"] == code.as_str()) {
            items.push(json!({ "MaCSDL": code }));
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn databases_are_added_once_beside_what_the_unit_sent() {
        let mut row = json!({"MaHoSo": "HS-1", "DSKetNoiCSDL": [{"MaCSDL": "KHAC"}]});
        add_to_row(&mut row, &[POPULATION.into(), BUSINESS.into()]);
        add_to_row(&mut row, &[POPULATION.into()]);
        assert_eq!(
            row["DSKetNoiCSDL"],
            json!([{"MaCSDL": "KHAC"}, {"MaCSDL": POPULATION}, {"MaCSDL": BUSINESS}])
        );
        let mut bare = json!({"MaHoSo": "HS-2"});
        add_to_row(&mut bare, &[]);
        assert!(bare.get("DSKetNoiCSDL").is_none());
    }
}
