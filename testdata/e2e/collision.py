#!/usr/bin/env python3
"""The collision hold of issue 17 (DESIGN.md §5 item 10) with Python's own
smtplib and imaplib against the running daemon: two agents press Reply on the
same customer message at once; exactly one reply is sent, the other client
gets the 550 that names the first agent, and "#send" then sends it.

Usage: collision.py MX_PORT SUBMISSION_PORT IMAP_PORT
Prints one line per step and OK at the end; exits non-zero on a failure.
"""
import email
import email.utils
import imaplib
import smtplib
import sys
import threading

mx_port, sub_port, imap_port = (int(a) for a in sys.argv[1:4])
HOST = "127.0.0.1"


def fail(msg):
    print("FAIL:", msg)
    sys.exit(1)


msg = ("From: Kim <kim@customer.example>\r\nTo: support@example.test\r\nSubject: Refund\r\n"
       "Message-ID: <kim-1@customer.example>\r\n\r\nPlease refund order 42.\r\n")
with smtplib.SMTP(HOST, mx_port) as s:
    s.sendmail("kim@customer.example", ["support@example.test"], msg)
print("customer wrote")


def fetch_latest(user, pw):
    im = imaplib.IMAP4(HOST, imap_port)
    im.login(user, pw)
    typ, _ = im.select("INBOX")
    if typ != "OK":
        fail("SELECT INBOX as " + user)
    typ, data = im.fetch(b"*", "(BODY.PEEK[HEADER])")
    if typ != "OK":
        fail("FETCH as " + user)
    im.logout()
    return email.message_from_bytes(data[0][1])


def reply_to(parent, agent, top="", tag="reply"):
    # What a mail client's Reply writes: To the served Reply-To, threaded.
    return ("From: %s\r\nTo: %s\r\nSubject: Re: Refund\r\nIn-Reply-To: %s\r\nReferences: %s\r\n"
            "Message-ID: <%s-%s@client.example>\r\n\r\n%sWe refunded you, says %s.\r\n"
            % (agent, parent["Reply-To"] or parent["From"], parent["Message-ID"], parent["Message-ID"],
               agent.split("@")[0], tag, top, agent))


agents = {"alice@example.test": "demo-alice", "bob@example.test": "demo-bob"}
parents = {a: fetch_latest(a, pw) for a, pw in agents.items()}
for a, p in parents.items():
    if email.utils.parseaddr(p["Reply-To"] or p["From"])[1] != "kim@customer.example":
        fail("%s's copy answers to %r" % (a, p["Reply-To"] or p["From"]))

# Both clients connect and authenticate, then send at the same moment.
conns = {}
for a, pw in agents.items():
    s = smtplib.SMTP(HOST, sub_port)
    s.login(a, pw)
    conns[a] = s
barrier = threading.Barrier(len(agents))
results = {}


def send(a):
    barrier.wait()
    try:
        conns[a].sendmail(a, ["kim@customer.example"], reply_to(parents[a], a))
        results[a] = None
    except smtplib.SMTPDataError as e:
        results[a] = (e.smtp_code, e.smtp_error.decode())


threads = [threading.Thread(target=send, args=(a,)) for a in agents]
for th in threads:
    th.start()
for th in threads:
    th.join()
for s in conns.values():
    s.quit()
sent = [a for a, r in results.items() if r is None]
held = [a for a, r in results.items() if r is not None]
if len(sent) != 1 or len(held) != 1:
    fail("results %r: want exactly one sent and one held" % results)
winner, loser = sent[0], held[0]
code, text = results[loser]
print("sent by", winner, "; held for", loser, ":", code, text)
if code != 550 or winner not in text or "#send" not in text:
    fail("the held client got %d %r, want 550 naming %s and #send" % (code, text, winner))

# The held agent adds #send at the top and sends again: it goes.
with smtplib.SMTP(HOST, sub_port) as s:
    s.login(loser, agents[loser])
    s.sendmail(loser, ["kim@customer.example"], reply_to(parents[loser], loser, "#send\r\n\r\n", "again"))
print("sent with #send by", loser)
print("OK")
