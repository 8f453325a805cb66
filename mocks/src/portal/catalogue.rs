//! The portal's procedure catalogue as the mock serves it: `LayThuTuc` (`maTTHC`) answers
//! the procedure's name, field, processing time (`THOIGIANGIAIQUYET`) and results
//! (`KETQUATHUCHIEN[] {MAKETQUA, TENKETQUA}`, the first being `MaKetQuaChinh`), as public
//! one-stop code reads it; `result[]` is empty for a code the catalogue does not have.
//!
//! The entries are the shipped units' procedures, with two differences a tester meets on
//! purpose: `1.005163` (IP Office) is not in it, and `1.000436` (STAMEQ) is named as the
//! national catalogue words it, longer than the unit's file. Codes and names are the
//! mock's own (assumed), like every catalogue entry on this machine.

use serde_json::{Value, json};

/// `(MATTHC, TENTTHC, MALINHVUC, THOIGIANGIAIQUYET, MAKETQUA, TENKETQUA)`.
const ENTRIES: &[(&str, &str, &str, &str, &str, &str)] = &[
    (
        "1.005146",
        "Đăng ký nhãn hiệu",
        "SHTT",
        "12 tháng",
        "KQ-SHTT-NH",
        "Giấy chứng nhận đăng ký nhãn hiệu",
    ),
    (
        "1.005140",
        "Đăng ký sáng chế",
        "SHTT",
        "18 tháng",
        "KQ-SHTT-SC",
        "Bằng độc quyền sáng chế",
    ),
    (
        "1.005152",
        "Đăng ký kiểu dáng công nghiệp",
        "SHTT",
        "7 tháng",
        "KQ-SHTT-KDCN",
        "Bằng độc quyền kiểu dáng công nghiệp",
    ),
    (
        "1.008433",
        "Đăng ký đề tài nghiên cứu cơ bản do Quỹ Phát triển khoa học và công nghệ quốc gia tài trợ",
        "KHCN",
        "90 ngày",
        "KQ-NAFOSTED-QD",
        "Quyết định tài trợ đề tài",
    ),
    (
        "1.008434",
        "Đề nghị điều chỉnh trong quá trình thực hiện đề tài do Quỹ tài trợ",
        "KHCN",
        "15 ngày",
        "KQ-NAFOSTED-DC",
        "Văn bản chấp thuận điều chỉnh",
    ),
    (
        "1.008435",
        "Đăng ký đề tài nghiên cứu ứng dụng do Quỹ tài trợ",
        "KHCN",
        "90 ngày",
        "KQ-NAFOSTED-QD",
        "Quyết định tài trợ đề tài",
    ),
    (
        "1.000412",
        "Đăng ký kiểm tra nhà nước về chất lượng hàng hóa nhập khẩu",
        "TDC",
        "1 ngày",
        "KQ-TDC-GCN",
        "Thông báo kết quả kiểm tra",
    ),
    (
        "1.000421",
        "Cấp giấy chứng nhận đăng ký hoạt động thử nghiệm",
        "TDC",
        "5 ngày",
        "KQ-TDC-GCN",
        "Giấy chứng nhận đăng ký hoạt động thử nghiệm",
    ),
    (
        "1.000436",
        "Phê duyệt mẫu phương tiện đo nhóm 2",
        "TDC",
        "15 ngày",
        "KQ-TDC-PDM",
        "Quyết định phê duyệt mẫu",
    ),
    (
        "1.000445",
        "Cấp mã số mã vạch",
        "TDC",
        "3 ngày",
        "KQ-TDC-MSMV",
        "Giấy chứng nhận quyền sử dụng mã số mã vạch",
    ),
    (
        "1.012345",
        "Cấp giấy phép tiến hành công việc bức xạ",
        "ATBXHN",
        "15 ngày",
        "KQ-ATBXHN-GP",
        "Giấy phép tiến hành công việc bức xạ",
    ),
    (
        "1.012346",
        "Cấp chứng chỉ nhân viên bức xạ",
        "ATBXHN",
        "10 ngày",
        "KQ-ATBXHN-CC",
        "Chứng chỉ nhân viên bức xạ",
    ),
    (
        "1.012347",
        "Gia hạn giấy phép tiến hành công việc bức xạ",
        "ATBXHN",
        "10 ngày",
        "KQ-ATBXHN-GP",
        "Giấy phép tiến hành công việc bức xạ",
    ),
];

/// `LayThuTuc`'s `result[]` for `code`: one entry, or none.
pub fn lay_thu_tuc(code: &str) -> Value {
    let found = ENTRIES.iter().filter(|e| e.0 == code).map(|e| {
        json!({"MATTHC": e.0, "TENTTHC": e.1, "MALINHVUC": e.2, "THOIGIANGIAIQUYET": e.3,
            "KETQUATHUCHIEN": [{"MAKETQUA": e.4, "TENKETQUA": e.5}]})
    });
    Value::Array(found.collect())
}
