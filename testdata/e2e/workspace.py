#!/usr/bin/env python3
"""The agents' IMAP workspace of issue 5 (DESIGN.md §6), with Python's own
imaplib against the running daemon.

Usage: workspace.py MX_PORT SUBMISSION_PORT IMAP_PORT
Prints one line per step and OK at the end; exits non-zero on a failure.
"""
import imaplib
import re
import smtplib
import socket
import sys
import time

mx_port, sub_port, imap_port = (int(a) for a in sys.argv[1:4])
HOST = "127.0.0.1"


def fail(msg):
    print("FAIL:", msg)
    sys.exit(1)


def customer(mid, subject, extra=""):
    msg = ("From: Gina <gina@customer.example>\r\nTo: support@example.test\r\nSubject: %s\r\n"
           "Message-ID: <%s>\r\n%s\r\nHello\r\n" % (subject, mid, extra))
    with smtplib.SMTP(HOST, mx_port) as s:
        s.sendmail("gina@customer.example", ["support@example.test"], msg)


def login(user, pw):
    im = imaplib.IMAP4(HOST, imap_port)
    im.login(user, pw)
    return im


def ok(typ, data, what):
    if typ != "OK":
        fail("%s: %s %r" % (what, typ, data))
    return data


def count(im, box):
    data = ok(*im.status(box, "(MESSAGES)"), "STATUS " + box)
    return int(re.search(rb"MESSAGES (\d+)", data[0]).group(1))


def flags(im, seq=b"1"):
    data = ok(*im.fetch(seq, "(FLAGS)"), "FETCH FLAGS")
    return re.search(rb"FLAGS \(([^)]*)\)", data[0]).group(1).split()


alice = login("alice@example.test", "demo-alice")
bob = login("bob@example.test", "demo-bob")
carol = login("carol@example.test", "demo-carol")

# 1. The folder list with its attributes.
data = ok(*alice.list(), "LIST")
folders = {}
for line in data:
    m = re.match(rb'\(([^)]*)\) "/" "?([^"]*)"?', line)
    folders[m.group(2).decode()] = m.group(1).decode().split()
for name, attr in [("INBOX", None), ("Mine", None), ("Unassigned", None), ("Closed", None),
                   ("Spam", "\\Junk"), ("Sent", "\\Sent"), ("Drafts", "\\Drafts"), ("Trash", "\\Trash")]:
    if name not in folders:
        fail("LIST lacks %s: %r" % (name, folders))
    if attr and attr not in folders[name]:
        fail("%s has %r, want %s" % (name, folders[name], attr))
caps = ok(*alice.capability(), "CAPABILITY")[0].decode().upper().split()
for c in ("IMAP4REV1", "IMAP4REV2", "IDLE", "MOVE", "UIDPLUS", "SPECIAL-USE", "LITERAL+", "NAMESPACE",
          "ESEARCH", "UNSELECT", "ENABLE", "STATUS=SIZE", "CHILDREN", "LIST-STATUS"):
    if c not in caps:
        fail("capability %s missing from %r" % (c, caps))
print("step 1: folders", sorted(folders))

# 2. A conversation moved to Closed by alice leaves bob's INBOX and is in Closed.
customer("ws-1@customer.example", "Printer jam")
ok(*bob.select("INBOX"), "bob SELECT")
ok(*alice.select("INBOX"), "alice SELECT")
typ, data = alice.uid("MOVE", "1", "Closed")
ok(typ, data, "MOVE to Closed")
typ, data = bob.noop()
if not bob.untagged_responses.get("EXPUNGE"):
    fail("bob's session in INBOX got no EXPUNGE at its next command: %r" % bob.untagged_responses)
if count(bob, "INBOX") != 0 or count(bob, "Closed") != 1:
    fail("bob: INBOX %d Closed %d" % (count(bob, "INBOX"), count(bob, "Closed")))
print("step 2: closed by alice, gone from bob's INBOX, in Closed")

# 3. A customer reply reopens it.
customer("ws-2@customer.example", "Re: Printer jam", "In-Reply-To: <ws-1@customer.example>\r\n")
if count(bob, "INBOX") != 2 or count(bob, "Closed") != 0:
    fail("after the customer's reply: INBOX %d Closed %d" % (count(bob, "INBOX"), count(bob, "Closed")))
print("step 3: the customer's reply reopened it")

# 4. A keyword set by alice is seen by bob; \Seen stays per agent.
ok(*alice.select("INBOX"), "alice SELECT")
ok(*alice.store("1", "+FLAGS", "(printer \\Seen)"), "STORE keyword")
ok(*bob.select("INBOX"), "bob SELECT")
bf = flags(bob, b"2")
if b"printer" not in bf:
    fail("bob does not see alice's keyword on the other message: %r" % bf)
if b"\\Seen" in flags(bob, b"1"):
    fail("alice's \\Seen leaked to bob")
print("step 4: keyword shared, \\Seen per agent")

# 5. carol (view) can't tag or move, can mark read.
ok(*carol.select("INBOX"), "carol SELECT")
typ, data = carol.store("1", "+FLAGS", "(urgent)")
if typ != "NO" or b"NOPERM" not in data[0]:
    fail("carol's tag: %s %r" % (typ, data))
typ, data = carol.uid("MOVE", "1:*", "Closed")
if typ != "NO" or b"NOPERM" not in data[0]:
    fail("carol's move: %s %r" % (typ, data))
ok(*carol.store("1", "+FLAGS", "(\\Seen)"), "carol marks read")
print("step 5: view agent refused with", data[0].decode())

# 6. A move into Mine assigns (the messages stay in INBOX, which shows every open conversation).
ok(*bob.select("INBOX"), "bob SELECT")
ok(*bob.uid("MOVE", "1:*", "Mine"), "MOVE to Mine")
if count(bob, "Mine") != 2 or count(alice, "Mine") != 0 or count(alice, "Unassigned") != 0:
    fail("Mine: bob %d alice %d" % (count(bob, "Mine"), count(alice, "Mine")))
print("step 6: MOVE to Mine assigned bob")

# 7. IDLE reports new mail within a second.
ok(*alice.select("INBOX"), "alice SELECT")
tag = alice._new_tag().decode()
alice.send(("%s IDLE\r\n" % tag).encode())
if not alice.readline().startswith(b"+"):
    fail("IDLE not accepted")
start = time.time()
customer("ws-3@customer.example", "New question")
alice.sock.settimeout(1.0)
try:
    line = alice.readline()
except socket.timeout:
    fail("no response under IDLE within a second")
if b"EXISTS" not in line:
    fail("under IDLE got %r" % line)
print("step 7: IDLE EXISTS after %.3fs" % (time.time() - start))
alice.sock.settimeout(None)
alice.send(b"DONE\r\n")
while not alice.readline().startswith(tag.encode()):
    pass

# 8. Private folders are ordinary; Trash closes.
ok(*alice.create("Projects"), "CREATE")
ok(*alice.append("Drafts", "(\\Draft)", None, b"Subject: draft\r\n\r\nwip\r\n"), "APPEND Drafts")
ok(*alice.select("INBOX"), "alice SELECT")
ok(*alice.copy("1", "Projects"), "COPY to Projects")
if count(alice, "Projects") != 1 or count(alice, "INBOX") != 3:
    fail("COPY to a private folder: Projects %d INBOX %d" % (count(alice, "Projects"), count(alice, "INBOX")))
ok(*alice.rename("Projects", "Archive"), "RENAME")
ok(*alice.select("Archive"), "SELECT Archive")
ok(*alice.store("1", "+FLAGS", "(\\Deleted)"), "STORE \\Deleted")
ok(*alice.expunge(), "EXPUNGE")
ok(*alice.select("INBOX"), "alice SELECT")
ok(*alice.delete("Archive"), "DELETE")
ok(*alice.uid("MOVE", "3", "Trash"), "MOVE to Trash")
if count(alice, "Closed") != 2 or count(alice, "Trash") != 1:  # the whole conversation closes
    fail("Trash: Closed %d Trash %d" % (count(alice, "Closed"), count(alice, "Trash")))
print("step 8: private folders, Trash closes")

for im in (alice, bob, carol):
    im.logout()
print("OK")
