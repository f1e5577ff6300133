"""Builds the two directory editions (danh bạ đơn vị) shipped with the router: hcmc-2021.json and hcmc-2025.json.

Run ``.venv/bin/python services/router/data/build_directories.py`` after changing it; the output is
the same on every run (names and codes from vietnamadminunits' dataset, handler names from a
seeded generator), so a change to the data shows as a reviewable diff. Raise the edition's version
when its content changes: every routing decision records the version it was made with.
"""

import json
import random
import sys
from pathlib import Path

HERE = Path(__file__).parent
SOCIAL = ["essential_supplies", "covid_support", "vulnerable_person", "other"]

# 2019 census population (thousands), to size each district's team as the city did.
POPULATION = {"760": 142, "761": 620, "764": 676, "765": 499, "766": 474, "767": 485, "768": 163,
              "769": 1013, "770": 190, "771": 234, "772": 209, "773": 175, "774": 159, "775": 233,
              "776": 424, "777": 785, "778": 360, "783": 462, "784": 542, "785": 705, "786": 206,
              "787": 71}
# The most populous wards and communes, where the 2021 outbreak hit hardest: their People's
# Committees received requests directly.
BIG_WARDS = {
    "777": ["Bình Hưng Hòa A", "Bình Hưng Hòa B", "Bình Trị Đông A", "Tân Tạo A", "An Lạc"],
    "785": ["Vĩnh Lộc A", "Vĩnh Lộc B", "Bình Hưng", "Tân Kiên"],
    "769": ["Linh Trung", "Hiệp Bình Chánh", "Phước Long B", "Long Thạnh Mỹ", "Tăng Nhơn Phú A"],
    "761": ["Thạnh Lộc", "Hiệp Thành", "Tân Chánh Hiệp", "Thới An"],
    "764": ["Phường 12", "Phường 16", "Phường 5"],
    "784": ["Xuân Thới Thượng", "Bà Điểm", "Tân Thới Nhì"],
    "767": ["Sơn Kỳ", "Tân Sơn Nhì"], "766": ["Phường 15", "Phường 13"],
    "765": ["Phường 13", "Phường 25"], "776": ["Phường 16", "Phường 4"],
    "778": ["Tân Thuận Đông", "Phú Mỹ"], "783": ["Tân Thạnh Đông", "Tân Phú Trung"],
    "786": ["Phước Kiển", "Hiệp Phước"], "775": ["Phường 10"], "773": ["Phường 16"],
}
DEPARTMENTS_2025 = [  # since 1 March 2025 social protection (bảo trợ xã hội) sits with Sở Y tế
    ("so-yte", "Sở Y tế TP.HCM (bảo trợ xã hội)", "social"),
    ("so-noivu", "Sở Nội vụ TP.HCM (lao động, người có công)", "social"),
    ("so-xaydung", "Sở Xây dựng TP.HCM", "urban"),
    ("so-congthuong", "Sở Công Thương TP.HCM", "urban"),
    ("so-nnmt", "Sở Nông nghiệp và Môi trường TP.HCM", "urban"),
    ("so-khcn", "Sở Khoa học và Công nghệ TP.HCM", "urban"),
]
FAMILY = ["Nguyễn"] * 8 + ["Trần"] * 3 + ["Lê"] * 3 + ["Phạm"] * 2 + ["Huỳnh", "Hoàng", "Võ", "Vũ", "Phan",
          "Trương", "Bùi", "Đặng", "Đỗ", "Ngô", "Hồ", "Dương", "Lý", "Đinh", "Lâm", "Mai", "Tô"]
MIDDLE = {"f": ["Thị", "Thị", "Ngọc", "Thanh", "Thu", "Kim", "Mỹ", "Bích", "Hồng", "Phương"],
          "m": ["Văn", "Văn", "Minh", "Quốc", "Hữu", "Đức", "Thanh", "Hoàng", "Công", "Tấn"]}
GIVEN = {"f": ["Anh", "Châu", "Dung", "Giang", "Hà", "Hạnh", "Hằng", "Hoa", "Hương", "Lan", "Linh", "Loan",
               "Mai", "Ngân", "Nhung", "Oanh", "Phương", "Quyên", "Tâm", "Thảo", "Trang", "Tuyết", "Vân",
               "Vy", "Yến", "Diễm", "Thủy", "Trinh"],
         "m": ["An", "Bảo", "Bình", "Cường", "Dũng", "Duy", "Hải", "Hiếu", "Hòa", "Hùng", "Huy", "Khang",
               "Khoa", "Lâm", "Long", "Lộc", "Minh", "Nam", "Nghĩa", "Phong", "Phúc", "Quang", "Sơn",
               "Tài", "Thắng", "Thịnh", "Trí", "Trung", "Tuấn", "Vinh"]}
# The first focal point of every unit is on call around the clock (trực 24/7); the rest alternate
# day and night so that every category is covered at every hour.
ROTATION = [("day", "social"), ("night", "social"), ("day", "urban"), ("night", "urban"),
            ("day", "all"), ("night", "all")]


def skill_sets() -> dict[str, list[str]]:
    """Handler skill profiles, from the category codes of contracts/data/categories.json."""
    categories = json.loads((HERE.parents[2] / "contracts" / "data" / "categories.json").read_text("utf-8"))
    codes = [c["code"] for c in categories["categories"]]
    return {"all": codes, "social": SOCIAL, "urban": [c for c in codes if c not in SOCIAL[:3]]}


def main() -> None:
    from vietnamadminunits.database.main import query

    legacy = query("SELECT * FROM admin_units_legacy WHERE provinceCode = '79' ORDER BY districtCode, wardCode")
    today = query("SELECT * FROM admin_units WHERE provinceCode = '79' ORDER BY wardCode")
    write(HERE / "hcmc-2021.json", edition_2021(legacy))
    write(HERE / "hcmc-2025.json", edition_2025(today))


def edition_2021(rows: list[dict]) -> dict:
    ed = "hcmc-2021"
    districts = {r["districtCode"]: r["district"] for r in rows}
    assert sorted(districts) == sorted(POPULATION), "district codes differ from vietnamadminunits'"
    wards = {(r["districtCode"], r["wardShort"]): r for r in rows if r["wardCode"]}
    pcs = share(330, {c: 8 * 100 + p for c, p in POPULATION.items()})
    offices = share(110, POPULATION)
    big = [(d, wards[(d, n)]) for d in BIG_WARDS for n in BIG_WARDS[d]]
    ward_sizes = share(140, {r["wardCode"]: 1000 + POPULATION[d] for d, r in big})
    units = [unit(ed, "1022", "Tổng đài 1022 TP.HCM (Sở Thông tin và Truyền thông)", "centre", "79", None,
                  ["webhook"], 25, "all"),
             unit(ed, "so-ldtbxh", "Sở Lao động - Thương binh và Xã hội TP.HCM", "department", "79", None,
                  ["webhook", "email"], 20, "social")]
    for code, name in sorted(districts.items()):
        units.append(unit(ed, code, f"UBND {name}", "district", code, "79", ["webhook", "email"],
                          pcs[code], "all", rotate=True))
    for code, name in sorted(districts.items()):
        units.append(unit(ed, f"{code}/ldtbxh", f"Phòng Lao động - Thương binh và Xã hội {name}", "department",
                          code, code, ["email"], offices[code], "social"))
    for d, r in big:
        units.append(unit(ed, f"{d}/{r['wardCode']}", f"UBND {r['ward']}, {districts[d]}", "ward",
                          r["wardCode"], d, ["zalo", "email"], ward_sizes[r["wardCode"]], "all", rotate=True))
    return {"edition": ed, "version": "hcmc-2021.2", "centre": f"{ed}/1022", "department": f"{ed}/so-ldtbxh",
            "description": "HCMC during the 2021 outbreak: the 1022 centre, the Department of Labour, Invalids "
                           "and Social Affairs, the People's Committees of Thủ Đức City and the 21 districts "
                           "(Quận 2, Quận 9 and the old Quận Thủ Đức are Thủ Đức City), each district's "
                           "Labour, Invalids and Social Affairs office (Phòng LĐTB-XH), and the People's "
                           "Committees of the 40 most populous wards and communes. Ward codes are as "
                           "vietnamadminunits lists them.",
            "skill_sets": skill_sets(), "units": units}


def edition_2025(rows: list[dict]) -> dict:
    ed = "hcmc-2025"
    assert len(rows) == 168, f"vietnamadminunits lists {len(rows)} HCMC wards, not 168"
    units = [unit(ed, "1022", "Tổng đài 1022 TP.HCM", "centre", "79", None, ["webhook"], 30, "all")]
    units += [unit(ed, key, name, "department", "79", None, ["webhook", "email"], 6, skills)
              for key, name, skills in DEPARTMENTS_2025]
    for r in rows:
        size, notify = {"Phường": (5, ["webhook", "zalo", "email"]), "Xã": (4, ["zalo", "email"])}.get(
            r["wardType"], (3, ["zalo", "email"]))
        units.append(unit(ed, r["wardCode"], f"UBND {r['ward']}", "ward", r["wardCode"], "79", notify, size, "all", rotate=True))
    return {"edition": ed, "version": "hcmc-2025.2", "centre": f"{ed}/1022", "department": f"{ed}/so-yte",
            "description": "HCMC since 1 July 2025 (Bình Dương and Bà Rịa–Vũng Tàu merged in): the 1022 "
                           "centre, the People's Committees of the 168 wards, communes and the Côn Đảo special "
                           "zone, and the city departments that take requests; Sở Y tế holds social "
                           "protection (the former Sở LĐTB-XH's vulnerable-people work).",
            "skill_sets": skill_sets(), "units": units}


def unit(edition: str, key: str, name: str, kind: str, admin_code: str, parent: str | None,
         notify: list[str], size: int, skills: str, rotate: bool = False) -> dict:
    uid = f"{edition}/{key}"
    rng = random.Random(uid)  # seeded by the unit: adding a unit leaves the others' names alone
    names: list[str] = []
    while len(names) < size:
        sex = rng.choice("fm")
        person = f"{rng.choice(FAMILY)} {rng.choice(MIDDLE[sex])} {rng.choice(GIVEN[sex])}"
        if person not in names:
            names.append(person)
    domain = f"{key.replace('/', '.')}.{edition}.hcmc.example"
    handlers = []
    for i, person in enumerate(names):
        shift, profile = ("24h", skills) if i == 0 else ROTATION[(i - 1) % len(ROTATION)]
        if not rotate:  # the centre and the specialised offices keep their skills at every hour
            profile = skills
        handler = {"id": f"{uid}/h{i + 1:02d}", "name": person, "skills": profile, "shift": shift}
        handler.update(contacts(notify, f"h{i + 1:02d}@{domain}", rng))
        handlers.append(handler)
    return {"id": uid, "name": name, "kind": kind, "admin_code": admin_code, "parent_code": parent,
            "notify": notify, **contacts(notify, f"tiepnhan@{domain}", rng), "handlers": handlers}


def contacts(notify: list[str], mailbox: str, rng: random.Random) -> dict:
    """The e-mail address and Zalo user id, for the channels the unit uses. Addresses are under
    the reserved ``.example`` domain and Zalo ids are made up: this is demonstration data, and a
    city loads its own through the same file format."""
    out: dict[str, str] = {}
    if "email" in notify:
        out["email"] = mailbox
    if "zalo" in notify:
        out["zalo"] = str(rng.randrange(10**18, 10**19))
    return out


def share(total: int, weights: dict[str, int]) -> dict[str, int]:
    """``total`` split in proportion to ``weights`` (largest remainder, ties by key), at least 1 each."""
    whole = sum(weights.values())
    exact = {k: total * w / whole for k, w in weights.items()}
    out = {k: max(1, int(v)) for k, v in exact.items()}
    for k in sorted(exact, key=lambda k: (out[k] - exact[k], k))[: total - sum(out.values())]:
        out[k] += 1
    return out


def write(path: Path, data: dict) -> None:
    """One unit per line: compact, and a change to one unit is a one-line diff."""
    head = {k: v for k, v in data.items() if k != "units"}
    lines = [json.dumps(u, ensure_ascii=False, separators=(",", ":")) for u in data["units"]]
    body = json.dumps(head, ensure_ascii=False, separators=(",", ":"))[:-1]
    path.write_text(body + ',"units":[\n' + ",\n".join(lines) + "\n]}\n", encoding="utf-8")
    handlers = sum(len(u["handlers"]) for u in data["units"])
    print(f"{path.name}: {len(data['units'])} units, {handlers} handlers", file=sys.stderr)


if __name__ == "__main__":
    main()
