#!/usr/bin/env python3
"""The walking skeleton of issue 2, as a new user would try it, with Python's
own smtplib and imaplib (clients we did not write).

Usage: walking_skeleton.py MX_PORT SUBMISSION_PORT IMAP_PORT OUTBOX_DIR
Prints one line per step; exits non-zero with a reason on the first failure.
"""
import email
import email.policy
import glob
import imaplib
import json
import os
import smtplib
import sys
import time
from email.message import EmailMessage

mx_port, sub_port, imap_port = (int(a) for a in sys.argv[1:4])
outbox = sys.argv[4]
HOST = "127.0.0.1"
CUSTOMER = "carla.customer@customer.example"
BODY = "Hello,\r\nmy printer is on fire.\r\nCarla\r\n"


def fail(msg):
    print("FAIL:", msg)
    sys.exit(1)


# 1. A customer mail to support@example.test on the MX.
m = EmailMessage()
m["From"] = "Carla Customer <%s>" % CUSTOMER
m["To"] = "support@example.test"
m["Subject"] = "Printer on fire"
m["Message-ID"] = "<printer-1@customer.example>"
m["Date"] = email.utils.formatdate()
m.set_content("my printer is on fire.\n")
with smtplib.SMTP(HOST, mx_port) as s:
    s.ehlo("mx.customer.example")
    refused = s.send_message(m, from_addr=CUSTOMER, to_addrs=["support@example.test"])
    if refused:
        fail("MX refused %r" % refused)
    # A recipient that is not ours is refused with 550 5.1.1.
    s.mail(CUSTOMER)
    code, msg = s.rcpt("someone@elsewhere.example")
    if code != 550 or not msg.startswith(b"5.1.1"):
        fail("relay attempt answered %d %r" % (code, msg))
print("step 1: customer mail accepted, relay refused")

# 2. It appears in alice's INBOX with its conversation header.
im = imaplib.IMAP4(HOST, imap_port)
im.login("alice@example.test", "demo-alice")
typ, data = im.select("INBOX")
if typ != "OK" or int(data[0]) != 1:
    fail("INBOX select: %s %r" % (typ, data))
typ, data = im.uid("FETCH", "1:*", "(UID FLAGS RFC822.SIZE INTERNALDATE ENVELOPE BODYSTRUCTURE BODY.PEEK[])")
if typ != "OK":
    fail("FETCH: %s %r" % (typ, data))
raw = data[0][1]
msg = email.message_from_bytes(raw, policy=email.policy.default)
conv = msg["X-Supportgate-Conversation"]
if not conv or msg["X-Supportgate-Kind"] != "inbound":
    fail("customer copy lacks conversation headers: %r" % raw[:300])
if msg["Message-ID"] != "<printer-1@customer.example>":
    fail("Message-ID changed: %r" % msg["Message-ID"])
typ, data = im.uid("SEARCH", None, "SUBJECT", "printer")
if typ != "OK" or len(data[0].split()) != 1:
    fail("SEARCH SUBJECT: %r" % data)
print("step 2: alice sees conversation", conv)

# 3. alice replies from a mail client through submission, with AUTH on loopback.
r = EmailMessage()
r["From"] = "Alice <alice@example.test>"
r["To"] = msg["Reply-To"] or msg["From"]
r["Subject"] = "Re: " + msg["Subject"]
r["In-Reply-To"] = msg["Message-ID"]
r["References"] = msg["Message-ID"]
r["X-Mozilla-Draft-Info"] = "internal/draft; vcard=0"
r.set_content(BODY.replace("\r\n", "\n"))
# The body exactly as smtplib puts it on the wire (CRLF line ends).
reply_body = r.as_bytes(policy=email.policy.SMTP).split(b"\r\n\r\n", 1)[1]
with smtplib.SMTP(HOST, sub_port) as s:
    s.ehlo("alice-laptop")
    s.login("alice@example.test", "demo-alice")
    refused = s.send_message(r)
    if refused:
        fail("submission refused %r" % refused)
print("step 3: alice's reply accepted")

# 4. The outbox holds one message: From the support address, To only the
# customer in the envelope, a support+<token> Reply-To, referencing the
# customer's Message-ID, body unchanged.
deadline = time.time() + 10
while time.time() < deadline and not glob.glob(os.path.join(outbox, "*.json")):
    time.sleep(0.05)
jsons = glob.glob(os.path.join(outbox, "*.json"))
if len(jsons) != 1:
    fail("outbox has %d envelopes" % len(jsons))
env = json.load(open(jsons[0]))
if env["rcpt_to"] != [CUSTOMER]:
    fail("envelope recipients %r" % env["rcpt_to"])
if not env["mail_from"].startswith("bounces+"):
    fail("mail_from %r" % env["mail_from"])
sent_raw = open(jsons[0][:-5] + ".eml", "rb").read()
sent = email.message_from_bytes(sent_raw, policy=email.policy.default)
if sent["From"].addresses[0].addr_spec != "support@example.test":
    fail("From %r" % sent["From"])
if "Alice" not in sent["From"].addresses[0].display_name:
    fail("From name %r" % sent["From"])
rt = sent["Reply-To"].addresses[0].addr_spec
if not rt.startswith("support+") or not rt.endswith("@example.test"):
    fail("Reply-To %r" % rt)
if sent["To"].addresses[0].addr_spec != CUSTOMER or len(sent["To"].addresses) != 1:
    fail("To %r" % sent["To"])
if sent["In-Reply-To"] != "<printer-1@customer.example>" or "<printer-1@customer.example>" not in sent["References"]:
    fail("In-Reply-To/References %r %r" % (sent["In-Reply-To"], sent["References"]))
if not sent["Message-ID"].startswith("<sg.%s." % conv):
    fail("Message-ID %r" % sent["Message-ID"])
if sent["Subject"] != "Re: Printer on fire [#%s]" % conv:
    fail("Subject %r lacks the conversation tag" % sent["Subject"])
if sent["X-Mozilla-Draft-Info"] is not None:
    fail("client noise kept")
if sent_raw.split(b"\r\n\r\n", 1)[1] != reply_body:
    fail("body changed: %r != %r" % (sent_raw.split(b"\r\n\r\n", 1)[1], reply_body))
print("step 4: outbox holds the rewritten reply", rt)

# 5. alice's INBOX shows both messages in the same conversation.
typ, data = im.noop()
typ, data = im.uid("FETCH", "1:*", "(BODY.PEEK[HEADER.FIELDS (X-SUPPORTGATE-CONVERSATION X-SUPPORTGATE-KIND)])")
headers = [email.message_from_bytes(d[1]) for d in data if isinstance(d, tuple)]
if len(headers) != 2:
    fail("INBOX has %d messages" % len(headers))
kinds = [h["X-Supportgate-Kind"] for h in headers]
convs = {h["X-Supportgate-Conversation"] for h in headers}
if kinds != ["inbound", "reply"] or convs != {conv}:
    fail("kinds %r conversations %r" % (kinds, convs))
im.logout()
print("step 5: INBOX shows", kinds, "in conversation", conv)
print("OK")
