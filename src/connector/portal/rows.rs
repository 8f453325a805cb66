//! A dossier's last whole `DongBoHoSoMC` row, kept so that every sync sends the row whole.
//!
//! The portal replaces the row it holds with the one it is sent; the real clients re-send
//! a dossier's whole row on every update (opencps-v2 keeps it and sends it again). A
//! unit's result, though, arrives on its own, after the data store took the file, and
//! names only the dossier and its result documents; and a unit's later status change
//! knows nothing of the documents a result brought. So the connector keeps, per
//! platform, unit code and dossier, the last row it delivered, as a note in the outbox
//! (sealed with the outbox when the outbox is sealed: the row holds the applicant's name,
//! phone and identity numbers), and sends each row as the kept row with this message's
//! fields laid over it ([`lay_over`]): a result adds its documents to the dossier, a later
//! status keeps the documents a result brought.
//!
//! Where no row is kept (a dossier synced before the bus, or first kept longer ago than
//! `outbox.note_retention`: a note's life runs from its first write), the portal's own
//! copy from `TraCuuHoSo` is the base (`result[0].HoSo`; assumed: the real answer's shape
//! is not public, the bundled mock answers so). A row that is still not whole is not
//! sent: the message is refused naming the dossier and what to send first.

use crate::outbox::Notes;
use serde_json::Value;
use std::sync::Arc;

/// The fields a row must have to be whole (what the portal needs to create a dossier).
pub const WHOLE_ROW_FIELDS: [&str; 4] = ["MaTTHC", "ChuHoSo", "NgayTiepNhan", "TrangThaiHoSo"];

/// The list of result documents, merged document by document rather than replaced.
const RESULT_DOCUMENTS: &str = "DanhSachGiayToKetQua";
/// Where the portal downloads a result document.
const FILE: &str = "DuongDanTepTinKetQua";

/// How long rows delivered wait in memory before they are written, together.
const WRITE_EVERY: std::time::Duration = std::time::Duration::from_millis(100);
/// Most rows written in one commit: a write copies only these, so a backlog of rows (a
/// slow disk under a drain) costs no more memory than the rows themselves.
const WRITE_CHUNK: usize = 2_000;
/// Most rows waiting to be written (about 1 KiB each); past it (the store failing or far
/// behind) they are let go: a row not kept costs its dossier's next sync a `TraCuuHoSo`.
const UNWRITTEN_CAP: usize = 20_000;

/// The rows a portal connector has delivered, one note per dossier.
///
/// Rows are written off the delivery path: a delivered call's rows wait in memory (read
/// first by [`KeptRows::kept`]) and every [`WRITE_EVERY`] what waited goes to the outbox,
/// [`WRITE_CHUNK`] rows a commit, by one writer task at a time. A durable commit per
/// portal call cost the outage drain three quarters of its speed; a row lost to a crash
/// before its commit costs its dossier one `TraCuuHoSo` (the portal's own copy is the
/// fallback base). A writer per 100 ms, each copying every row waiting, is what once
/// held 6.8 GB during a drain on a slow disk: the writes took longer than 100 ms and
/// piled up, each with its own copy (heaptrack of `bench --scenario outage`).
#[derive(Clone)]
pub struct KeptRows {
    notes: Arc<dyn Notes>,
    /// Whose rows these are (`portal`, `ministry`): two platforms keep their own.
    scope: &'static str,
    /// Rows delivered and not written yet: note name → row.
    unwritten: Arc<std::sync::Mutex<std::collections::HashMap<String, Vec<u8>>>>,
    /// Whether a writer task runs (or is due): never two at once.
    writing: Arc<std::sync::atomic::AtomicBool>,
}

impl KeptRows {
    pub fn new(notes: Arc<dyn Notes>, scope: &'static str) -> KeptRows {
        KeptRows {
            notes,
            scope,
            unwritten: Arc::default(),
            writing: Arc::default(),
        }
    }

    fn name(&self, madonvi: &str, code: &str) -> String {
        format!("portal-row/{}/{madonvi}/{code}", self.scope)
    }

    /// The row last delivered for dossier `code` of unit `madonvi`, if one is kept.
    pub fn kept(&self, madonvi: &str, code: &str) -> Result<Option<Value>, String> {
        let name = self.name(madonvi, code);
        let waiting = self.unwritten.lock().unwrap().get(&name).cloned();
        let note = match waiting {
            Some(row) => Some(row.into()),
            None => self
                .notes
                .get_note(&name)
                .map_err(|e| format!("reading the kept row of dossier {code}: {e}"))?,
        };
        Ok(note.and_then(|bytes: bytes::Bytes| serde_json::from_slice(&bytes).ok()))
    }

    /// The national databases consulted for dossier `code` ([`super::consulted`]).
    pub fn consulted(&self, code: &str) -> Result<Vec<String>, String> {
        super::consulted::consulted(self.notes.as_ref(), code)
            .map_err(|e| format!("reading the databases consulted for dossier {code}: {e}"))
    }

    /// Rows waiting to be written.
    pub fn unwritten(&self) -> usize {
        self.unwritten.lock().unwrap().len()
    }

    /// Keep `rows` (whole rows the platform accepted): at once in memory, in the outbox
    /// with a coming write (within [`WRITE_EVERY`] when the disk keeps up). Never waits
    /// for the disk.
    pub fn keep(&self, madonvi: &str, rows: &[Value]) {
        {
            let mut unwritten = self.unwritten.lock().unwrap();
            if unwritten.len() >= UNWRITTEN_CAP {
                tracing::warn!(
                    rows = unwritten.len(),
                    "dossier rows not written in time; let go"
                );
                unwritten.clear();
            }
            for row in rows {
                if let (Some(code), Ok(bytes)) = (row["MaHoSo"].as_str(), serde_json::to_vec(row)) {
                    unwritten.insert(self.name(madonvi, code), bytes);
                }
            }
        }
        if self.writing.swap(true, std::sync::atomic::Ordering::AcqRel) {
            return;
        }
        let Ok(runtime) = tokio::runtime::Handle::try_current() else {
            self.write_all();
            self.writing
                .store(false, std::sync::atomic::Ordering::Release);
            return;
        };
        let kept = self.clone();
        runtime.spawn(async move { kept.write_until_done().await });
    }

    /// The writer task: every [`WRITE_EVERY`], what waits, a chunk a commit, until
    /// nothing waits. Then it ends; the next [`KeptRows::keep`] starts another. A write
    /// that fails ends it too: the rows wait for the next delivered call (a store that
    /// cannot write is not asked again every 100 ms).
    async fn write_until_done(self) {
        use std::sync::atomic::Ordering;
        loop {
            tokio::time::sleep(WRITE_EVERY).await;
            let writing = self.clone();
            let wrote = tokio::task::spawn_blocking(move || writing.write_all())
                .await
                .unwrap_or(Wrote::Failed);
            self.writing.store(false, Ordering::Release);
            // A row kept after the store above started a writer of its own (or will);
            // one kept before it and not written yet is this task's to write.
            if wrote == Wrote::Failed
                || self.unwritten() == 0
                || self.writing.swap(true, Ordering::AcqRel)
            {
                return;
            }
        }
    }

    /// Write chunk after chunk until what waited is written or a write fails.
    fn write_all(&self) -> Wrote {
        loop {
            match self.write_chunk() {
                Wrote::More => continue,
                done => return done,
            }
        }
    }

    /// Write up to [`WRITE_CHUNK`] waiting rows in one commit; a row sent again meanwhile
    /// stays waiting.
    fn write_chunk(&self) -> Wrote {
        let batch: Vec<(String, Vec<u8>)> = {
            let unwritten = self.unwritten.lock().unwrap();
            unwritten
                .iter()
                .take(WRITE_CHUNK)
                .map(|(k, v)| (k.clone(), v.clone()))
                .collect()
        };
        if batch.is_empty() {
            return Wrote::All;
        }
        if let Err(e) = self.notes.put_notes(&batch) {
            tracing::warn!(error = %e, "dossier rows not kept; trying again with the next write");
            return Wrote::Failed;
        }
        let full = batch.len() == WRITE_CHUNK;
        let mut unwritten = self.unwritten.lock().unwrap();
        for (name, value) in batch {
            if unwritten.get(&name) == Some(&value) {
                unwritten.remove(&name);
            }
        }
        if full { Wrote::More } else { Wrote::All }
    }
}

/// How a write of waiting rows went.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Wrote {
    /// What waited is written.
    All,
    /// A full chunk: more may wait.
    More,
    /// The store refused it; the rows still wait.
    Failed,
}

/// `item` laid over `base`: each field `item` names replaces the base's, the others stay;
/// result documents are merged one by one ([`merge_documents`]).
pub fn lay_over(base: Option<&Value>, item: &Value) -> Value {
    let (Some(Value::Object(base)), Value::Object(new)) = (base, item) else {
        return item.clone();
    };
    let mut row = base.clone();
    for (field, value) in new {
        let merged = match (field.as_str(), row.get(field), value) {
            (RESULT_DOCUMENTS, Some(Value::Array(held)), Value::Array(sent)) => {
                Value::Array(merge_documents(held, sent))
            }
            _ => value.clone(),
        };
        row.insert(field.clone(), merged);
    }
    Value::Object(row)
}

/// A result document's identity: its own number (`SoKyHieu`), else its `GiayToId`.
fn document_id(doc: &Value) -> Option<&str> {
    doc["SoKyHieu"].as_str().or(doc["GiayToId"].as_str())
}

/// The dossier's documents once `sent` arrives: a document sent again is laid over its
/// earlier copy, field by field, except that a copy with its file (`DuongDanTepTinKetQua`,
/// from the data store) keeps its file and id when the new copy has none (a unit's later
/// status names the licence, but not where the data store holds it); other documents stay.
fn merge_documents(held: &[Value], sent: &[Value]) -> Vec<Value> {
    let mut docs: Vec<Value> = held.to_vec();
    for doc in sent {
        let same =
            document_id(doc).and_then(|id| docs.iter().position(|d| document_id(d) == Some(id)));
        match (same, doc) {
            (Some(at), Value::Object(new)) => {
                let Value::Object(copy) = &mut docs[at] else {
                    docs[at] = doc.clone();
                    continue;
                };
                let keep_file = copy.contains_key(FILE) && !new.contains_key(FILE);
                for (field, value) in new {
                    if keep_file && field == "GiayToId" {
                        continue;
                    }
                    copy.insert(field.clone(), value.clone());
                }
            }
            _ => docs.push(doc.clone()),
        }
    }
    docs
}

/// The fields a whole row needs that `row` lacks (empty when it is whole).
pub fn missing(row: &Value) -> Vec<&'static str> {
    WHOLE_ROW_FIELDS
        .into_iter()
        .filter(|f| match &row[*f] {
            Value::Null => true,
            Value::String(s) => s.trim().is_empty(),
            _ => false,
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn whole(status: i64) -> Value {
        json!({"MaHoSo": "HS-1", "MaTTHC": "1.005140", "ChuHoSo": "Nguyễn Văn A",
            "NgayTiepNhan": "20240305083000", "TrangThaiHoSo": status})
    }

    #[test]
    fn a_result_is_laid_over_the_kept_row_and_a_later_status_keeps_the_documents() {
        let doc = |id: &str, no: &str| json!({"GiayToId": id, "SoKyHieu": no});
        let result = json!({"MaHoSo": "HS-1", "DanhSachGiayToKetQua": [doc("K-1", "1-0045678")]});
        assert_eq!(missing(&result), WHOLE_ROW_FIELDS.to_vec());
        let row = lay_over(Some(&whole(9)), &result);
        assert!(missing(&row).is_empty(), "{row}");
        assert_eq!(row["TrangThaiHoSo"], 9);
        assert_eq!(row["DanhSachGiayToKetQua"][0]["SoKyHieu"], "1-0045678");

        let later = lay_over(Some(&row), &whole(10));
        assert_eq!(later["TrangThaiHoSo"], 10);
        assert_eq!(later["DanhSachGiayToKetQua"], row["DanhSachGiayToKetQua"]);

        // A second document joins the first; the first sent again updates its copy.
        let second = json!({"MaHoSo": "HS-1", "DanhSachGiayToKetQua": [doc("K-2", "2"), {"GiayToId": "K-9", "SoKyHieu": "1-0045678", "TenGiayTo": "Bằng"}]});
        let both = lay_over(Some(&later), &second);
        let docs = both["DanhSachGiayToKetQua"].as_array().unwrap();
        assert_eq!(docs.len(), 2, "{both}");
        assert_eq!(docs[0]["TenGiayTo"], "Bằng");
        assert_eq!(docs[0]["GiayToId"], "K-9");
        assert_eq!(docs[1]["SoKyHieu"], "2");

        // A copy with its file keeps file and id when a unit's status names it again.
        let stored = json!({"MaHoSo": "HS-1", "DanhSachGiayToKetQua": [
            {"GiayToId": "KDL-1", "SoKyHieu": "GP-1", "DuongDanTepTinKetQua": "http://kho/KDL-1"}]});
        let status = json!({"MaHoSo": "HS-1", "TrangThaiHoSo": 10, "DanhSachGiayToKetQua": [
            {"GiayToId": "GP-1", "SoKyHieu": "GP-1", "TenGiayTo": "Giấy phép GP-1"}]});
        let row = lay_over(Some(&lay_over(Some(&whole(9)), &stored)), &status);
        assert_eq!(
            row["DanhSachGiayToKetQua"],
            json!([{"GiayToId": "KDL-1", "SoKyHieu": "GP-1", "TenGiayTo": "Giấy phép GP-1",
                "DuongDanTepTinKetQua": "http://kho/KDL-1"}])
        );
    }

    /// Notes on a slow disk: each write takes a while; how many run at once is counted.
    #[derive(Default)]
    struct SlowNotes {
        notes: std::sync::Mutex<std::collections::HashMap<String, Vec<u8>>>,
        writing: std::sync::atomic::AtomicUsize,
        most_at_once: std::sync::atomic::AtomicUsize,
        largest_write: std::sync::atomic::AtomicUsize,
    }

    impl Notes for SlowNotes {
        fn put_note(&self, name: &str, value: &[u8]) -> Result<(), crate::outbox::StoreError> {
            self.put_notes(&[(name.to_string(), value.to_vec())])
        }
        fn get_note(&self, name: &str) -> Result<Option<bytes::Bytes>, crate::outbox::StoreError> {
            let notes = self.notes.lock().unwrap();
            Ok(notes.get(name).map(|v| v.clone().into()))
        }
        fn put_notes(&self, notes: &[(String, Vec<u8>)]) -> Result<(), crate::outbox::StoreError> {
            use std::sync::atomic::Ordering::SeqCst;
            let now = self.writing.fetch_add(1, SeqCst) + 1;
            self.most_at_once.fetch_max(now, SeqCst);
            self.largest_write.fetch_max(notes.len(), SeqCst);
            std::thread::sleep(std::time::Duration::from_millis(150));
            self.notes.lock().unwrap().extend(notes.iter().cloned());
            self.writing.fetch_sub(1, SeqCst);
            Ok(())
        }
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn on_a_slow_disk_one_write_at_a_time_a_chunk_each_and_every_row_is_kept() {
        use std::sync::atomic::Ordering::SeqCst;
        let notes = Arc::new(SlowNotes::default());
        let kept = KeptRows::new(notes.clone(), "portal");
        // Rows delivered faster than a write takes, for longer than several writes.
        for call in 0..60 {
            let rows: Vec<Value> = (0..100)
                .map(|i| {
                    let mut row = whole(4);
                    row["MaHoSo"] = json!(format!("HS-{}", call * 100 + i));
                    row
                })
                .collect();
            kept.keep("000.00.17.G22", &rows);
            tokio::time::sleep(std::time::Duration::from_millis(10)).await;
        }
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(30);
        while kept.unwritten() > 0 || notes.writing.load(SeqCst) > 0 {
            assert!(std::time::Instant::now() < deadline, "rows never written");
            tokio::time::sleep(std::time::Duration::from_millis(20)).await;
        }
        assert_eq!(notes.notes.lock().unwrap().len(), 6_000);
        assert_eq!(notes.most_at_once.load(SeqCst), 1, "writes piled up");
        assert!(notes.largest_write.load(SeqCst) <= WRITE_CHUNK);
        let row = kept.kept("000.00.17.G22", "HS-5999").unwrap().unwrap();
        assert_eq!(row["TrangThaiHoSo"], 4);
    }

    /// Notes on a full disk: every write refused, and counted.
    #[derive(Default)]
    struct FullDisk {
        writes: std::sync::atomic::AtomicUsize,
    }

    impl Notes for FullDisk {
        fn put_note(&self, _: &str, _: &[u8]) -> Result<(), crate::outbox::StoreError> {
            Err(crate::outbox::StoreError::Full(
                "no space left on device".into(),
            ))
        }
        fn get_note(&self, _: &str) -> Result<Option<bytes::Bytes>, crate::outbox::StoreError> {
            Ok(None)
        }
        fn put_notes(&self, _: &[(String, Vec<u8>)]) -> Result<(), crate::outbox::StoreError> {
            self.writes
                .fetch_add(1, std::sync::atomic::Ordering::SeqCst);
            self.put_note("", b"")
        }
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn a_store_that_cannot_write_is_asked_again_with_the_next_call_not_every_100_ms() {
        use std::sync::atomic::Ordering::SeqCst;
        let notes = Arc::new(FullDisk::default());
        let kept = KeptRows::new(notes.clone(), "portal");
        kept.keep("000.00.17.G22", &[whole(4)]);
        tokio::time::sleep(std::time::Duration::from_millis(700)).await;
        assert_eq!(notes.writes.load(SeqCst), 1);
        // Still waiting, still read from memory; the next delivered call tries again.
        assert_eq!(kept.unwritten(), 1);
        assert!(kept.kept("000.00.17.G22", "HS-1").unwrap().is_some());
        kept.keep("000.00.17.G22", &[whole(5)]);
        tokio::time::sleep(std::time::Duration::from_millis(400)).await;
        assert_eq!(notes.writes.load(SeqCst), 2);
    }

    #[test]
    fn without_a_base_the_item_is_the_row() {
        let result = json!({"MaHoSo": "HS-1"});
        assert_eq!(lay_over(None, &result), result);
        let mut blank = whole(4);
        blank["ChuHoSo"] = json!(" ");
        assert_eq!(missing(&blank), ["ChuHoSo"]);
    }
}
