//! The outage scenario's traffic: NAFOSTED status events of one dossier after another,
//! each dossier's statuses moving forward as NAFOSTED sends them.

/// The statuses of a dossier's life, in the order NAFOSTED sends them: the n-th of
/// `per_dossier` events.
fn status_word(n: usize, per_dossier: usize) -> &'static str {
    match n {
        0 => "submitted",
        1 => "accepted",
        _ if n + 2 == per_dossier => "approved",
        _ if n + 1 == per_dossier => "result_delivered",
        _ => "under_review",
    }
}

pub(super) fn nafosted_event(dossier: usize, n: usize, per_dossier: usize) -> serde_json::Value {
    serde_json::json!({
        "eventType": "dossier.updated",
        "dossierCode": format!("NAFOSTED-2026-{dossier:06}"),
        "procedureCode": "1.008433",
        "procedureName": "Đăng ký đề tài nghiên cứu cơ bản do Quỹ tài trợ",
        "applicant": {"type": "individual", "fullName": "Nguyễn Thị Minh Anh",
                      "idNumber": "001203004567", "phone": "0912345678"},
        "submittedAt": "2026-11-02T08:30:00+07:00",
        "status": status_word(n, per_dossier),
        "channel": if dossier.is_multiple_of(3) { "counter" } else { "online" },
        "step": n,
    })
}
