#!/usr/bin/env python3
"""Side conversations and merging of issue 17 (DESIGN.md §14) with Python's
own smtplib and imaplib against the running daemon.

Usage: side_merge.py MX_PORT SUBMISSION_PORT IMAP_PORT
Prints one line per step and OK at the end; exits non-zero on a failure.
The caller checks the outbox: what left, to whom.
"""
import email
import email.utils
import imaplib
import re
import smtplib
import sys

mx_port, sub_port, imap_port = (int(a) for a in sys.argv[1:4])
HOST = "127.0.0.1"


def fail(msg):
    print("FAIL:", msg)
    sys.exit(1)


def mx(sender, msg):
    with smtplib.SMTP(HOST, mx_port) as s:
        s.sendmail(sender, ["support@example.test"], msg)


def submit(agent, pw, rcpts, msg):
    with smtplib.SMTP(HOST, sub_port) as s:
        s.login(agent, pw)
        s.sendmail(agent, rcpts, msg)


def inbox(user="alice@example.test", pw="demo-alice"):
    """Every message of INBOX: (uid, parsed header)."""
    im = imaplib.IMAP4(HOST, imap_port)
    im.login(user, pw)
    im.select("INBOX")
    typ, data = im.uid("FETCH", "1:*", "(UID BODY.PEEK[HEADER])")
    im.logout()
    out = []
    for item in data:
        if isinstance(item, tuple):
            uid = int(re.search(rb"UID (\d+)", item[0]).group(1))
            out.append((uid, email.message_from_bytes(item[1])))
    return out


def by_id(msgs, mid):
    for uid, h in msgs:
        if h["Message-ID"] == mid:
            return uid, h
    fail("no message %s in INBOX" % mid)


mx("kim@customer.example", "From: Kim <kim@customer.example>\r\nTo: support@example.test\r\nSubject: Broken part\r\n"
   "Message-ID: <kim-1@customer.example>\r\n\r\nMy part broke.\r\n")
print("customer wrote")

# 1. Bob asks the vendor in a side conversation, the warehouse in Bcc.
submit("bob@example.test", "demo-bob", ["sales@vendor.example", "dock@warehouse.example"],
       "From: bob@example.test\r\nTo: sales@vendor.example\r\nSubject: Re: Broken part\r\n"
       "In-Reply-To: <kim-1@customer.example>\r\nMessage-ID: <bob-side@client.example>\r\n\r\n#side\r\n\r\nDo you have a spare?\r\n")
msgs = inbox()
side = [h for _, h in msgs if h["X-Supportgate-Kind"] == "side"]
if len(side) != 1:
    fail("alice sees %d side messages, want 1" % len(side))
side = side[0]
if side["X-Supportgate-Side"] != "1" or "dock@warehouse.example" not in (side["X-Supportgate-Bcc"] or ""):
    fail("the side message is served as side %r, Bcc %r" % (side["X-Supportgate-Side"], side["X-Supportgate-Bcc"]))
if side["Reply-To"] != "sales@vendor.example":
    fail("Reply on the side message writes to %r, want the vendor" % side["Reply-To"])
side_id = side["Message-ID"]
print("side message", side_id, "served as side 1 with its Bcc")

# 2. The vendor answers; the warehouse answers with Reply All and joins.
mx("sales@vendor.example", "From: sales@vendor.example\r\nTo: support@example.test\r\nSubject: Re: Broken part\r\n"
   "Message-ID: <vendor-1@vendor.example>\r\nIn-Reply-To: %s\r\nReferences: %s\r\n\r\nYes, two.\r\n" % (side_id, side_id))
mx("dock@warehouse.example", "From: dock@warehouse.example\r\nTo: support@example.test\r\nCc: sales@vendor.example\r\n"
   "Subject: Re: Broken part\r\nMessage-ID: <dock-1@warehouse.example>\r\nIn-Reply-To: %s\r\n\r\nOne here too.\r\n" % side_id)
msgs = inbox()
for mid in ("<vendor-1@vendor.example>", "<dock-1@warehouse.example>"):
    _, h = by_id(msgs, mid)
    if h["X-Supportgate-Kind"] != "side" or h["X-Supportgate-Side"] != "1":
        fail("%s is served as %r side %r" % (mid, h["X-Supportgate-Kind"], h["X-Supportgate-Side"]))
    if "sales@vendor.example" not in (h["Reply-To"] or "") or len(h.get_all("Reply-To")) != 1:
        fail("Reply on %s writes to %r, want the side's recipients" % (mid, h.get_all("Reply-To")))
print("the vendor's answer and the Bcc recipient's Reply All are side 1")

# 3. Bob presses Reply on the vendor's answer: the side goes on.
submit("bob@example.test", "demo-bob", ["sales@vendor.example"],
       "From: bob@example.test\r\nTo: sales@vendor.example\r\nSubject: Re: Broken part\r\n"
       "In-Reply-To: <vendor-1@vendor.example>\r\nMessage-ID: <bob-side-2@client.example>\r\n\r\nPlease send one.\r\n")
print("bob answered the vendor")

# 4. Merge: the customer opens a second conversation from home; bob
# answers both; then merges #1 into #2.
mx("kim@home.example", "From: kim@home.example\r\nTo: support@example.test\r\nSubject: Part again\r\n"
   "Message-ID: <kim-2@home.example>\r\n\r\nStill broken.\r\n")
submit("bob@example.test", "demo-bob", ["kim@customer.example"],
       "From: bob@example.test\r\nTo: kim@customer.example\r\nSubject: Re: Broken part\r\n"
       "In-Reply-To: <kim-1@customer.example>\r\nMessage-ID: <bob-r1@client.example>\r\n\r\nA spare is coming.\r\n")
submit("bob@example.test", "demo-bob", ["kim@home.example"],
       "From: bob@example.test\r\nTo: kim@home.example\r\nSubject: Re: Part again\r\n"
       "In-Reply-To: <kim-2@home.example>\r\nMessage-ID: <bob-r2@client.example>\r\n\r\nSee the other thread.\r\n")
before = inbox()
r1 = [h["Message-ID"] for _, h in before if h["X-Supportgate-Conversation"] == "1" and h["X-Supportgate-Kind"] == "reply"]
r2 = [h["Message-ID"] for _, h in before if h["X-Supportgate-Conversation"] == "2" and h["X-Supportgate-Kind"] == "reply"]
if len(r1) != 1 or len(r2) != 1:
    fail("replies %r %r" % (r1, r2))
uid_before, _ = by_id(before, "<kim-1@customer.example>")
submit("bob@example.test", "demo-bob", ["support@example.test"],
       "From: bob@example.test\r\nTo: support@example.test\r\nSubject: Re: Broken part\r\n"
       "In-Reply-To: <kim-1@customer.example>\r\n\r\n#merge 2\r\n")
after = inbox()
convs = {h["X-Supportgate-Conversation"] for _, h in after}
if convs != {"2"}:
    fail("after the merge INBOX holds conversations %r, want only 2" % convs)
uid_after, _ = by_id(after, "<kim-1@customer.example>")
if uid_after <= uid_before:
    fail("the moved message kept UID %d (was %d)" % (uid_after, uid_before))
print("merged: INBOX holds conversation 2 only; the moved messages have new UIDs")

# 5. The customer answers the last message of each: both land in #2.
mx("kim@customer.example", "From: kim@customer.example\r\nTo: support@example.test\r\nSubject: Re: Broken part\r\n"
   "Message-ID: <kim-3@customer.example>\r\nIn-Reply-To: %s\r\n\r\nThanks!\r\n" % r1[0])
mx("kim@home.example", "From: kim@home.example\r\nTo: support@example.test\r\nSubject: Re: Part again\r\n"
   "Message-ID: <kim-4@home.example>\r\nIn-Reply-To: %s\r\n\r\nGot it.\r\n" % r2[0])
final = inbox()
for mid in ("<kim-3@customer.example>", "<kim-4@home.example>"):
    _, h = by_id(final, mid)
    if h["X-Supportgate-Conversation"] != "2":
        fail("%s landed in conversation %s" % (mid, h["X-Supportgate-Conversation"]))
print("the customer's replies to both conversations landed in #2")
print("OK")
