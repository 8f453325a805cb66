"""A SOAP client built by zeep from the bus's WSDL sends STAMEQ's GuiHoSo.

Usage: soap_client.py WSDL_URL UNIT_KEY DOSSIER_CODE
Prints the answer as JSON: {"KetQua": ..., "MaTiepNhan": [...], "TrungLap": ...}.
"""

import json
import sys

import requests
import zeep
from zeep.transports import Transport

wsdl, key, code = sys.argv[1], sys.argv[2], sys.argv[3]
session = requests.Session()
session.trust_env = False  # loopback only: no proxy
session.headers["Authorization"] = f"Bearer {key}"
client = zeep.Client(wsdl, transport=Transport(session=session))
answer = client.service.GuiHoSo(
    HoSo={
        "loai": "moi",
        "SoHoSo": code,
        "MaThuTuc": "1.000412",
        "TenThuTuc": "Đăng ký kiểm tra nhà nước về chất lượng hàng hóa nhập khẩu",
        "NguoiNop": {
            "loai": "doanhnghiep",
            "HoTen": "CÔNG TY TNHH KIỂM ĐỊNH SAO MAI",
            "MaSo": "0100308695",
            "DienThoai": "0243791123",
        },
        "NgayNhan": "05/03/2024 08:30",
        "TinhTrang": "DA_TIEP_NHAN",
        "HinhThucNop": "TRUC_TUYEN",
    }
)
print(
    json.dumps(
        {
            "KetQua": answer.KetQua,
            "MaTiepNhan": list(answer.MaTiepNhan),
            "TrungLap": answer.TrungLap,
        }
    )
)
