"""CsvSource and JsonlSource: full reads, snapshot diffs, crash safety, errors with line numbers."""

from __future__ import annotations

import json
import tracemalloc
from collections.abc import Generator
from pathlib import Path

import pytest

from provisor.engine.jobs.model import SourceConfig, SourceType
from provisor.engine.model import ObjectKind, SourceError, SourceObject
from provisor.engine.sources.files import CsvSource, JsonlSource, from_config

HEADER = ",".join(
    ["objectId", "objectType", "userPrincipalName", "displayName", "givenName", "surname"]
    + ["department", "accountEnabled", "manager", "members"]
)
ROWS = [
    "u1,user,alice@contoso.com,Alice Wong,Alice,Wong,R&D,true,,",
    "g1,group,,Sales Team,,,,,,u1;u2",
    "u2,,bob@contoso.com,Bob,Bob,Stone,Sales,false,u1,",
    "u3,User,carol@contoso.com,Carol,,,,,u1,",
]


def write_csv(path: Path, rows: list[str], header: str = HEADER) -> Path:
    path.write_text("\n".join([header, *rows]) + "\n", encoding="utf-8")
    return path


@pytest.fixture
def csv_source(tmp_path: Path) -> CsvSource:
    return CsvSource(write_csv(tmp_path / "hr.csv", ROWS), snapshot_path=tmp_path / "hr.snapshot")


def anchors(objects: list[SourceObject]) -> list[tuple[str, str, bool]]:
    return [(o.kind.value, o.anchor, o.deleted) for o in objects]


def test_read_all_yields_users_then_groups_with_entra_names(csv_source: CsvSource) -> None:
    objects = list(csv_source.read_all().objects)
    assert anchors(objects) == [
        ("user", "u1", False),
        ("user", "u2", False),
        ("user", "u3", False),
        ("group", "g1", False),
    ]
    assert dict(objects[1].attributes) == {
        "objectId": "u2",
        "userPrincipalName": "bob@contoso.com",
        "mailNickname": "bob",
        "displayName": "Bob",
        "givenName": "Bob",
        "surname": "Stone",
        "department": "Sales",
        "accountEnabled": False,
        "IsSoftDeleted": True,
        "manager": "u1",
    }
    assert objects[2].attributes["accountEnabled"] is True  # an empty cell: enabled by default
    assert dict(objects[3].attributes) == {
        "objectId": "g1",
        "displayName": "Sales Team",
        "mailNickname": "salesteam",
        "securityEnabled": True,
        "members": ["u1", "u2"],
        "memberGroups": [],
    }


def test_changes_are_diffed_against_the_last_snapshot(tmp_path: Path, csv_source: CsvSource) -> None:
    first = csv_source.read_all()
    assert len(list(first.objects)) == 4
    write_csv(
        csv_source.path,
        [
            "u1,user,alice@contoso.com,Alice Wong,Alice,Wong,R&D,true,,",
            "g1,group,,Sales Team,,,,,,u1",  # u2 left the group
            "u3,user,carol@contoso.com,Carol,,,Finance,,u1,",  # department set
            "u4,user,dan@contoso.com,Dan,,,,,,",  # new
        ],  # u2 removed
    )
    changes = csv_source.read_changes(first.watermark)
    got = list(changes.objects)
    assert anchors(got) == [
        ("user", "u3", False),
        ("user", "u4", False),
        ("user", "u2", True),
        ("group", "g1", False),
    ]
    assert got[0].attributes["department"] == "Finance"
    assert got[3].attributes["members"] == ["u1"]
    assert got[2] == SourceObject(ObjectKind.USER, "u2", deleted=True)
    assert changes.final_watermark() == changes.watermark != first.watermark
    assert list(csv_source.read_changes(changes.watermark).objects) == []


def test_uncommitted_changes_are_yielded_again(csv_source: CsvSource) -> None:
    first = csv_source.read_all()
    list(first.objects)
    write_csv(csv_source.path, [*ROWS[:3], "u5,user,eve@contoso.com,Eve,,,,,,"])  # u3 out, u5 in
    expected = [("user", "u5", False), ("user", "u3", True)]
    abandoned = csv_source.read_changes(first.watermark).objects
    assert next(abandoned) == SourceObject(ObjectKind.USER, "u5", abandoned_attrs())
    assert isinstance(abandoned, Generator)
    abandoned.close()  # the engine crashed mid-cycle
    finished = csv_source.read_changes(first.watermark)
    assert anchors(list(finished.objects)) == expected  # ... and again after a crash before commit
    again = csv_source.read_changes(first.watermark)
    assert anchors(list(again.objects)) == expected
    list(csv_source.read_changes(again.watermark).objects)  # the engine commits `again`
    with pytest.raises(SourceError, match="names no complete snapshot .* run a full read"):
        csv_source.read_changes(first.watermark)


def abandoned_attrs() -> dict[str, object]:
    return {
        "objectId": "u5",
        "userPrincipalName": "eve@contoso.com",
        "mailNickname": "eve",
        "displayName": "Eve",
        "accountEnabled": True,
        "IsSoftDeleted": False,
    }


def test_a_read_that_fails_midway_commits_nothing(csv_source: CsvSource) -> None:
    first = csv_source.read_all()
    list(first.objects)
    write_csv(csv_source.path, ["u1,user,alice@contoso.com,Alice,,,Ops,true,,", "u9,user,,NoUpn,,,,,,"])
    broken = csv_source.read_changes(first.watermark)
    with pytest.raises(SourceError, match=r"hr\.csv, line 3: a user needs a userPrincipalName"):
        list(broken.objects)
    write_csv(csv_source.path, ["u1,user,alice@contoso.com,Alice,,,Ops,true,,"])
    fixed = list(csv_source.read_changes(first.watermark).objects)
    assert anchors(fixed) == [
        ("user", "u1", False),
        ("user", "u2", True),
        ("user", "u3", True),
        ("group", "g1", True),
    ]
    with pytest.raises(SourceError, match="run a full read"):
        csv_source.read_changes(broken.watermark)


@pytest.mark.parametrize(
    ("rows", "message"),
    [
        (["u1,user,a@x,A,,,,true,,", "u2,user,b@x,B,,,,"], "line 3: expected 10 fields, found 8"),
        (["u1,user,a@x,A,,,,yes,,"], "line 2: accountEnabled must be true or false, not 'yes'"),
        ([",user,a@x,A,,,,,,"], "line 2: no objectId"),
        (["u1,robot,a@x,A,,,,,,"], "line 2: objectType must be user or group, not 'robot'"),
        (
            ["u1,user,a@x,A,,,,,,", "u2,user,b@x,B,,,,,,", "u1,user,c@x,C,,,,,,"],
            "line 4: objectId 'u1' repeats line 2",
        ),
        (["g1,group,,,,,,,,u1"], "line 2: a group needs a displayName"),
        (["u1,user,a@x,A,,,,,,g1"], "line 2: members is a group column, and this row is a user"),
        (['u1,user,a@x,"Multi', 'line",,,,,,', "u2,user,b@x,B,,,,nope,,"], "line 4: accountEnabled"),
    ],
)
def test_malformed_rows_name_the_file_and_line(tmp_path: Path, rows: list[str], message: str) -> None:
    source = CsvSource(write_csv(tmp_path / "bad.csv", rows), snapshot_path=tmp_path / "s")
    with pytest.raises(SourceError, match=rf"bad\.csv, {message}"):
        list(source.read_all().objects)


def test_test_checks_the_file_and_its_header(tmp_path: Path) -> None:
    snapshot = tmp_path / "s"
    CsvSource(write_csv(tmp_path / "ok.csv", []), snapshot_path=snapshot).test()
    with pytest.raises(SourceError, match="cannot read .*missing.csv"):
        CsvSource(tmp_path / "missing.csv", snapshot_path=snapshot).test()
    with pytest.raises(SourceError, match="line 1: the header has no employeeId column"):
        CsvSource(
            write_csv(tmp_path / "a.csv", [], HEADER), snapshot_path=snapshot, anchor="employeeId"
        ).test()
    with pytest.raises(SourceError, match="line 1: the header needs userPrincipalName"):
        CsvSource(write_csv(tmp_path / "b.csv", [], "objectId,mail"), snapshot_path=snapshot).test()
    with pytest.raises(SourceError, match="line 1: the header repeats the column mail"):
        CsvSource(
            write_csv(tmp_path / "c.csv", [], "objectId,userPrincipalName,mail,mail"), snapshot_path=snapshot
        ).test()
    empty = tmp_path / "empty.csv"
    empty.write_text("")
    with pytest.raises(SourceError, match="line 1: the file is empty"):
        CsvSource(empty, snapshot_path=snapshot).test()


def test_a_configured_anchor_column_bom_and_delimiter(tmp_path: Path) -> None:
    path = tmp_path / "excel.csv"
    path.write_bytes("\ufeffemployeeId;userPrincipalName;mail\n1001;ann@x.com;ann@x.com\n".encode())
    source = CsvSource(path, snapshot_path=tmp_path / "s", anchor="employeeId", delimiter=";")
    source.test()
    (obj,) = list(source.read_all().objects)
    assert obj.anchor == "1001"
    assert dict(obj.attributes) == {
        "objectId": "1001",
        "employeeId": "1001",
        "userPrincipalName": "ann@x.com",
        "mailNickname": "ann",
        "mail": "ann@x.com",
        "accountEnabled": True,
        "IsSoftDeleted": False,
    }


def write_jsonl(path: Path, objects: list[object]) -> Path:
    path.write_text("\n".join(json.dumps(o) for o in objects) + "\n", encoding="utf-8")
    return path


def test_jsonl_full_read_changes_and_errors(tmp_path: Path) -> None:
    path = write_jsonl(
        tmp_path / "hr.jsonl",
        [
            {
                "objectType": "group",
                "objectId": "g1",
                "displayName": "Ops",
                "members": ["u1"],
                "memberGroups": ["g2"],
            },
            {"objectId": "u1", "userPrincipalName": "a@x.com", "accountEnabled": False, "employeeId": 42},
            {"objectType": "group", "objectId": "g2", "displayName": "All Staff", "mailNickname": "everyone"},
        ],
    )
    source = JsonlSource(path, snapshot_path=tmp_path / "s")
    source.test()
    first = source.read_all()
    objects = list(first.objects)
    assert anchors(objects) == [("user", "u1", False), ("group", "g1", False), ("group", "g2", False)]
    assert dict(objects[0].attributes) == {
        "objectId": "u1",
        "userPrincipalName": "a@x.com",
        "mailNickname": "a",
        "accountEnabled": False,
        "IsSoftDeleted": True,
        "employeeId": "42",
    }
    assert objects[1].attributes["memberGroups"] == ["g2"]
    assert objects[2].attributes["mailNickname"] == "everyone"

    text = path.read_text().replace('"Ops"', '"Operations"')
    path.write_text(text + "\n" + json.dumps({"objectId": "u2", "userPrincipalName": "b@x.com"}) + "\n")
    assert anchors(list(source.read_changes(first.watermark).objects)) == [
        ("user", "u2", False),
        ("group", "g1", False),
    ]

    path.write_text(text + '{"objectId": "u3", "userPrincipalName": \n')
    with pytest.raises(SourceError, match=r"hr\.jsonl, line 4: not JSON"):
        list(source.read_all().objects)
    path.write_text(text + "[1, 2]\n")
    with pytest.raises(SourceError, match=r"hr\.jsonl, line 4: each line must be a JSON object"):
        list(source.read_all().objects)
    # half a surrogate pair names no character: refused like any text that is not JSON, where it
    # used to crash the read (the object's digest could not encode it), and a whole pair is read
    line = '{"objectId": "u3", "userPrincipalName": "c@x", "displayName": "A %s"}\n'
    path.write_text(text + line % "\\ud800 B")
    with pytest.raises(SourceError, match=r"hr\.jsonl, line 4: not JSON: .*surrogate"):
        list(source.read_all().objects)
    path.write_text(text + line % "\\ud83d\\ude00")
    read = {o.anchor: o for o in source.read_all().objects}
    assert read["u3"].attributes["displayName"] == "A \U0001f600"
    path.write_text(text + '{"objectId": "u3", "userPrincipalName": "c@x", "manager": {"id": 1}}\n')
    with pytest.raises(SourceError, match=r"line 4: manager must be a text value, not dict"):
        list(source.read_all().objects)


def test_reading_streams_rows(tmp_path: Path) -> None:
    """8,000 rows: Python memory while reading stays far below the objects' total size."""
    ROWS_BIG = 8000
    path = tmp_path / "big.csv"
    with path.open("w") as f:
        f.write(HEADER + "\n")
        for i in range(ROWS_BIG):
            f.write(
                f"u{i},user,user{i}@contoso.com,User number {i},Given{i},Family{i},Dept{i % 9},true,u0,\n"
            )
    source = CsvSource(path, snapshot_path=tmp_path / "s")
    tracemalloc.start()
    try:
        count = sum(1 for _ in source.read_all().objects)
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert count == ROWS_BIG
    print(peak)
    assert peak < 1_000_000, peak  # 8,000 objects held at once take over 8 MB


def test_from_config(tmp_path: Path) -> None:
    csv_path = write_csv(tmp_path / "hr.csv", ROWS)
    config = SourceConfig(type=SourceType.CSV, path=csv_path, options=(("delimiter", ","),))
    source = from_config(config, snapshot_path=tmp_path / "default.snapshot")
    assert isinstance(source, CsvSource)
    assert len(list(source.read_all().objects)) == 4
    assert (tmp_path / "default.snapshot").exists()
    jsonl = SourceConfig(
        type=SourceType.JSONL, path=tmp_path / "x.jsonl", options=(("snapshot", str(tmp_path / "o")),)
    )
    assert isinstance(from_config(jsonl, snapshot_path=tmp_path / "unused"), JsonlSource)
    with pytest.raises(SourceError, match="needs a path"):
        from_config(SourceConfig(type=SourceType.CSV), snapshot_path=tmp_path / "s")


# -- get / get_many: objects by anchor, for escrow retries and group-driven scope changes ---------


def test_get_answers_from_the_file_as_it_is_now(csv_source: CsvSource) -> None:
    """No read needed first, and a rewritten file is answered as rewritten (not as snapshotted)."""
    bob = csv_source.get(ObjectKind.USER, "u2")
    assert bob is not None and bob.attributes["department"] == "Sales"
    assert bob == list(csv_source.read_all().objects)[1]  # the same object a read yields
    group = csv_source.get(ObjectKind.GROUP, "g1")
    assert group is not None and group.attributes["members"] == ["u1", "u2"]
    write_csv(csv_source.path, [ROWS[0], ROWS[1], "u2,,bob@contoso.com,Bob,Bob,Stone,Ops,false,u1,"])
    bob = csv_source.get(ObjectKind.USER, "u2")
    assert bob is not None and bob.attributes["department"] == "Ops"
    assert csv_source.get(ObjectKind.USER, "u3") is None  # gone from the file
    assert csv_source.get(ObjectKind.USER, "g1") is None  # there, but a group
    assert csv_source.get(ObjectKind.GROUP, "u1") is None


def test_get_many_reads_the_file_once_for_every_anchor(csv_source: CsvSource) -> None:
    found = csv_source.get_many(ObjectKind.USER, ["u3", "u1", "missing", "g1"])
    assert sorted(found) == ["u1", "u3"]
    assert found["u3"].attributes["userPrincipalName"] == "carol@contoso.com"
    assert csv_source.get_many(ObjectKind.USER, []) == {}


def test_get_normalises_only_the_rows_asked_for_and_stops_once_found(tmp_path: Path) -> None:
    rows = [ROWS[0], "u9,user,,No Upn,,,,,,", ROWS[2], "u5,user,too,few,fields"]
    source = CsvSource(write_csv(tmp_path / "hr.csv", rows), snapshot_path=tmp_path / "s")
    assert source.get(ObjectKind.USER, "u2") is not None  # past a bad row, before a broken one
    with pytest.raises(SourceError, match=r"hr.csv, line 3: a user needs a userPrincipalName"):
        source.get(ObjectKind.USER, "u9")
    with pytest.raises(SourceError, match=r"line 5: expected 10 fields, found 5"):
        source.get(ObjectKind.USER, "absent")  # looked for to the end of the file


def test_jsonl_get_with_a_numeric_anchor(tmp_path: Path) -> None:
    path = tmp_path / "hr.jsonl"
    path.write_text(
        '{"objectId": 7, "userPrincipalName": "a@x", "department": "R&D"}\n'
        "\n"
        '{"objectId": "g", "objectType": "group", "displayName": "G", "members": ["7"]}\n'
    )
    source = JsonlSource(path, snapshot_path=tmp_path / "s")
    user = source.get(ObjectKind.USER, "7")
    assert user is not None and user.anchor == "7" and user.attributes["department"] == "R&D"
    assert source.get_many(ObjectKind.GROUP, ["g", "7"]).keys() == {"g"}
