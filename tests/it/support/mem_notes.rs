//! Notes kept in memory, for a connector built by hand in a test.

/// Notes in memory, for a connector built by hand.
#[derive(Default)]
pub struct MemNotes(pub std::sync::Mutex<std::collections::HashMap<String, Vec<u8>>>);

impl lienthong::outbox::Notes for MemNotes {
    fn put_note(&self, name: &str, value: &[u8]) -> Result<(), lienthong::outbox::StoreError> {
        self.0
            .lock()
            .unwrap()
            .insert(name.to_string(), value.to_vec());
        Ok(())
    }
    fn get_note(&self, name: &str) -> Result<Option<bytes::Bytes>, lienthong::outbox::StoreError> {
        Ok(self.0.lock().unwrap().get(name).cloned().map(Into::into))
    }
}
