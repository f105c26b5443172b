"""Push and pull semantics of DESIGN.md §7 on both backends."""

from __future__ import annotations

import uuid

from .helpers import Api, b64, random_record, unb64


def test_push_assigns_gapless_sequences_and_pull_returns_them(alice: Api) -> None:
    store = alice.claim()
    batch = [random_record() for _ in range(3)]
    response = alice.push(store, 0, batch)
    assert response.status_code == 200, response.text
    body = response.json()
    assert body["head"] == 3
    assert body["assigned"] == [{"event_id": eid, "seq": n} for n, (eid, _) in enumerate(batch, 1)]
    more = [random_record() for _ in range(2)]
    assert alice.push(store, 3, more).json()["head"] == 5
    assert [(seq, eid, data) for seq, eid, data in alice.pull_all(store)] == [
        (n, eid, data) for n, (eid, data) in enumerate(batch + more, 1)
    ]


def test_inv004_record_bytes_are_preserved_byte_for_byte(alice: Api) -> None:
    """INV-004: every byte value, empty-ish and large records come back identical."""
    store = alice.claim()
    payloads = [bytes([0]), bytes(range(256)), b"\xff" * 65536, b"=\n\r\x00" * 7, b"a"]
    batch = [(str(uuid.uuid4()), data) for data in payloads]
    assert alice.push(store, 0, batch).status_code == 200
    assert [data for _, _, data in alice.pull_all(store)] == payloads


def test_padded_and_unpadded_base64_are_the_same_bytes_and_output_is_unpadded(alice: Api) -> None:
    store = alice.claim()
    eid = str(uuid.uuid4())
    body = {"expected_head": 0, "records": [{"event_id": eid, "record": b64(b"ab", padded=True)}]}
    response = alice.client.post(f"/v1/stores/{store}/push", json=body, headers=alice.auth)
    assert response.status_code == 200, response.text
    # The same record unpadded is the same bytes: an idempotent retry, not a conflict.
    assert alice.push(store, 0, [(eid, b"ab")]).json()["assigned"] == [{"event_id": eid, "seq": 1}]
    record = alice.pull(store).json()["records"][0]["record"]
    assert record == "YWI" and unb64(record) == b"ab"


def test_inv008_lost_acknowledgement_retry_returns_same_sequences(alice: Api) -> None:
    """INV-008: the push was stored but its response lost; the retry with the OLD
    expected_head gets the same sequences and nothing is stored twice."""
    store = alice.claim()
    assert alice.push(store, 0, [random_record()]).status_code == 200
    batch = [random_record() for _ in range(4)]
    first = alice.push(store, 1, batch)  # response "dropped": we only keep what the server did
    assert first.status_code == 200
    retry = alice.push(store, 1, batch)
    assert retry.status_code == 200, retry.text
    assert (
        retry.json()
        == first.json()
        == {
            "head": 5,
            "assigned": [{"event_id": eid, "seq": n} for n, (eid, _) in enumerate(batch, 2)],
        }
    )
    # Even a stale expected_head far in the past (or beyond the head) succeeds when all is stored.
    assert alice.push(store, 0, batch).status_code == 200
    assert alice.push(store, 99, batch).status_code == 200
    stored = alice.pull_all(store)
    assert [seq for seq, _, _ in stored] == [1, 2, 3, 4, 5]
    assert len({eid for _, eid, _ in stored}) == 5


def test_inv008_partial_overlap_keeps_old_sequences_and_head_checks_new_ones(alice: Api) -> None:
    """INV-008: stored records keep their sequence; new ones still need the head check."""
    store = alice.claim()
    old = [random_record() for _ in range(2)]
    assert alice.push(store, 0, old).status_code == 200
    fresh = random_record()
    stale = alice.push(store, 0, [*old, fresh])
    assert stale.status_code == 409
    assert stale.json()["code"] == "server_ahead" and stale.json()["head"] == 2
    assert len(alice.pull_all(store)) == 2, "nothing of a refused push is stored"
    mixed = alice.push(store, 2, [*old, fresh])
    assert mixed.status_code == 200
    assert mixed.json() == {
        "head": 3,
        "assigned": [
            {"event_id": old[0][0], "seq": 1},
            {"event_id": old[1][0], "seq": 2},
            {"event_id": fresh[0], "seq": 3},
        ],
    }


def test_server_ahead_and_server_behind(alice: Api) -> None:
    store = alice.claim()
    assert alice.push(store, 0, [random_record() for _ in range(3)]).status_code == 200
    ahead = alice.push(store, 1, [random_record()])
    assert ahead.status_code == 409
    assert ahead.headers["content-type"] == "application/problem+json"
    assert (ahead.json()["code"], ahead.json()["head"]) == ("server_ahead", 3)
    behind = alice.push(store, 7, [random_record()])
    assert behind.status_code == 409
    assert (behind.json()["code"], behind.json()["head"]) == ("server_behind", 3)
    assert [seq for seq, _, _ in alice.pull_all(store)] == [1, 2, 3]


def test_event_id_with_different_bytes_is_a_conflict(alice: Api) -> None:
    store = alice.claim()
    eid, data = random_record()
    assert alice.push(store, 0, [(eid, data)]).status_code == 200
    clash = alice.push(store, 1, [random_record(), (eid, data + b"!")])
    assert clash.status_code == 409
    assert clash.json()["code"] == "event_id_conflict"
    assert clash.json()["event_id"] == eid
    assert alice.pull_all(store) == [(1, eid, data)]


def test_the_same_event_id_may_live_in_two_stores(alice: Api) -> None:
    first, second = alice.claim(), alice.claim()
    record = random_record()
    assert alice.push(first, 0, [record]).json()["assigned"][0]["seq"] == 1
    assert alice.push(second, 0, [record]).json()["assigned"][0]["seq"] == 1


def test_empty_push_reports_the_head(alice: Api) -> None:
    store = alice.claim()
    alice.push(store, 0, [random_record()])
    assert alice.push(store, 0, []).json() == {"head": 1, "assigned": []}


def test_pull_pages_with_since_limit_and_has_more(alice: Api) -> None:
    store = alice.claim()
    batch = [random_record(8) for _ in range(7)]
    alice.push(store, 0, batch)
    page = alice.pull(store, since=0, limit=3).json()
    assert [r["seq"] for r in page["records"]] == [1, 2, 3]
    assert (page["head"], page["has_more"]) == (7, True)
    page = alice.pull(store, since=3, limit=4).json()
    assert [r["seq"] for r in page["records"]] == [4, 5, 6, 7]
    assert page["has_more"] is False
    page = alice.pull(store, since=7).json()
    assert page == {"records": [], "head": 7, "has_more": False}
    assert [r["event_id"] for r in alice.pull(store, since=5).json()["records"]] == [
        batch[5][0],
        batch[6][0],
    ]


def test_pull_beyond_the_head_is_empty_with_the_head(alice: Api) -> None:
    store = alice.claim()
    alice.push(store, 0, [random_record()])
    assert alice.pull(store, since=50).json() == {"records": [], "head": 1, "has_more": False}


def test_claim_is_idempotent_and_lists_stores(alice: Api) -> None:
    store = str(uuid.uuid4())
    first = alice.client.put(f"/v1/stores/{store}", headers=alice.auth)
    again = alice.client.put(f"/v1/stores/{store}", headers=alice.auth)
    assert (first.status_code, again.status_code) == (201, 200)
    assert first.json() == {"store_id": store, "head": 0, "vault_revision": None}
    other = alice.claim()
    alice.push(other, 0, [random_record()])
    listed = alice.client.get("/v1/stores", headers=alice.auth).json()
    assert {(s["store_id"], s["head"]) for s in listed} == {(store, 0), (other, 1)}


def test_vault_compare_and_set(alice: Api) -> None:
    store = alice.claim()
    url = f"/v1/stores/{store}/vault"
    missing = alice.client.get(url, headers=alice.auth)
    assert (missing.status_code, missing.json()["code"]) == (404, "vault_not_found")
    put = alice.client.put(
        url,
        json={"expected_revision": None, "revision": 1, "vault": b64(b"v1")},
        headers=alice.auth,
    )
    assert put.status_code == 200 and put.json() == {"revision": 1}
    assert alice.client.get(url, headers=alice.auth).json() == {"revision": 1, "vault": b64(b"v1")}
    stale = alice.client.put(
        url, json={"expected_revision": None, "revision": 2, "vault": b64(b"x")}, headers=alice.auth
    )
    assert (stale.status_code, stale.json()["code"], stale.json()["revision"]) == (
        409,
        "vault_conflict",
        1,
    )
    not_newer = alice.client.put(
        url, json={"expected_revision": 1, "revision": 1, "vault": b64(b"x")}, headers=alice.auth
    )
    assert (not_newer.status_code, not_newer.json()["code"]) == (409, "vault_revision_not_newer")
    newer = alice.client.put(
        url, json={"expected_revision": 1, "revision": 5, "vault": b64(b"v5")}, headers=alice.auth
    )
    assert newer.json() == {"revision": 5}
    assert alice.client.get(url, headers=alice.auth).json() == {"revision": 5, "vault": b64(b"v5")}
    listed = alice.client.get("/v1/stores", headers=alice.auth).json()
    assert listed == [{"store_id": store, "head": 0, "vault_revision": 5}]


def test_first_vault_upload_accepts_zero_as_no_revision(alice: Api) -> None:
    store = alice.claim()
    url = f"/v1/stores/{store}/vault"
    body = {"expected_revision": 0, "revision": 1, "vault": b64(b"v1")}
    assert alice.client.put(url, json=body, headers=alice.auth).json() == {"revision": 1}
    again = alice.client.put(url, json={**body, "revision": 2}, headers=alice.auth)
    assert (again.status_code, again.json()["code"]) == (409, "vault_conflict")
