"""A unit hears of its cases on the channels the directory gives it: the router names them, with
the handler's own addresses, in AssignmentIssued; the notifier sends on each; oversight shows each
delivery. Real Kafka, PostgreSQL, processes, and the demo's gateway and mail-server stand-ins."""

import httpx

from services.router.directory import load_directory
from tests.e2e.test_lifecycle import has, submit
from tests.support.kafka import case_events
from tests.support.mesh import oversight_get, wait_for


def arrived(mesh, channel: str, to: str, code: str) -> list[dict]:
    messages = httpx.get(mesh.url("gateways") + "/messages", timeout=10).json()
    return [m for m in messages if m["channel"] == channel and m["to"] == to and code in m["text"]]


async def test_a_district_hears_by_webhook_and_its_handler_by_e_mail(mesh, kafka_bootstrap):
    receipt = submit(mesh)  # Quận Phú Nhuận: its People's Committee takes cases by webhook and e-mail
    events = await case_events(kafka_bootstrap, receipt["case_id"], has("AssignmentIssued"))
    assignment = next(e for e in events if e.event_type == "AssignmentIssued")
    handler = next(h for h in load_directory("hcmc-2021").unit(assignment.unit.id).handlers
                   if h.id == assignment.handler.id)
    own_mail = dict(handler.contacts)["email"]
    assert own_mail.endswith("@768.hcmc-2021.hcmc.example")
    assert [(n.channel, n.address) for n in assignment.notify] == [("webhook", None), ("email", own_mail)]

    mails = wait_for(lambda: arrived(mesh, "email", own_mail, receipt["tracking_code"]), 30,
                     what=f"the assignment's e-mail to {own_mail}")
    assert len(mails) == 1 and handler.name in mails[0]["text"]

    def sent():
        timeline = oversight_get(mesh, f"/v1/cases/{receipt['case_id']}/timeline")
        if timeline.status_code != 200:  # not projected yet
            return set()
        return {(d["recipient"], d["channel"]) for d in timeline.json()["deliveries"] if d["outcome"] == "sent"}
    wait_for(lambda: {("unit", "webhook"), ("handler", "email")} <= sent(), 30,
             what="both of the unit's deliveries in oversight")
    # Counted again once the notifier has recorded it sent: a second send would be there by now.
    assert len(arrived(mesh, "email", own_mail, receipt["tracking_code"])) == 1
