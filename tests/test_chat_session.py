"""The chat's per-page queue: order, stop, edits and what the browser keeps (no models)."""

from __future__ import annotations

from rag.serve.chat_session import Session


def test_questions_are_queued_in_the_order_sent_even_when_they_arrive_out_of_order():
    session = Session()
    session.add("first?", 5, "hybrid", sent=1000)
    session.add("third?", 5, "hybrid", sent=1100)
    session.add("second?", 5, "hybrid", sent=1050)  # its request overtaken by the third's
    assert [e.asked for e in session.entries] == ["first?", "second?", "third?"]
    session.entries[0].status = "answering"
    session.add("zeroth?", 5, "hybrid", sent=900)  # never ahead of one already being answered
    assert [e.asked for e in session.entries][:2] == ["first?", "zeroth?"]


def test_stop_takes_back_what_is_not_answered_and_edit_takes_the_last_back():
    session = Session()
    for i, status in enumerate(("answered", "answering", "waiting")):
        session.add(f"q{i}?", 5, "hybrid").status = status
    assert session.stop() == 2 and [e.status for e in session.entries] == ["answered", "stopped", "stopped"]
    assert session.drop_last().asked == "q2?" and len(session.entries) == 2
    session.entries[-1].status = "answering"
    assert session.drop_last() is None  # not while it is being answered


def test_a_follow_up_is_read_from_the_answered_turns():
    session = Session()
    first = session.add("Which IMU leader was killed in a U.S. drone attack?", 5, "hybrid")
    first.status, first.answer = "answered", "Tohir Yuldosh"
    assert session.add("When was he killed?", 5, "hybrid").read == "When was Tohir Yuldosh killed?"


def test_the_browser_copy_restores_signed_cards_only():
    session = Session()
    entry = session.add("Who?", 5, "hybrid")
    entry.status, entry.answer, entry.html = "answered", "Noor", "<div class='rag-card'>Noor</div>"
    session.add("Pending?", 5, "hybrid")
    kept = session.to_json()
    restored = Session.from_json(kept)
    assert [(e.asked, e.status, e.html) for e in restored.entries] == [
        ("Who?", "answered", "<div class='rag-card'>Noor</div>"), ("Pending?", "stopped", "")]
    kept[0]["html"] = "<img src=x onerror=alert(1)>"  # written into the browser's storage by someone else
    forged = Session.from_json(kept)
    assert forged.entries[0].html == "" and forged.entries[0].status == "stopped"
    assert "onerror" not in "".join(m["content"] for m in forged.messages())
    assert Session.from_json({"not": "a list"}).entries == [] and Session.from_json([{"asked": 1}]).entries == []
