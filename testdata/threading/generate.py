#!/usr/bin/env python3
"""Writes the threading corpus: real clients' header shapes, each case with
the conversation it must land in. Tokens and signed Message-IDs are computed
with SECRET, which the Go test writes into the data directory as token.key.

X-Test-Rcpt is the envelope recipient; X-Test-Expect is "new N" (starts
conversation N), "N" (lands in conversation N) or "dup N" (a duplicate of a
message of conversation N: stored once). Cases run in file-name order.
Run it again after changing it: python3 generate.py
"""
import base64, hashlib, hmac, os

SECRET = b"supportgate threading corpus secret, 32 bytes or more"
HOST = "mail.example.test"

def mac(purpose, value):
    d = hmac.new(SECRET, purpose.encode() + b"\0" + value.encode(), hashlib.sha256).digest()
    return base64.b32encode(d).decode().rstrip("=").lower()[:16]

def token(conv):
    return "%d-%s" % (conv, mac("reply", str(conv)))

def signed(conv, msg):
    ids = "%d.%d" % (conv, msg)
    return "sg.%s.%s@%s" % (ids, mac("msgid", ids), HOST)

cases = {
"01-seed-ann.eml": ("support@example.test", "new 1", """\
From: Ann Customer <ann@customer.example>
To: support@example.test
Subject: Printer on fire
Date: Mon, 16 Nov 2026 09:00:00 +0100
Message-ID: <ann-1@customer.example>
MIME-Version: 1.0
Content-Type: text/plain; charset=utf-8

My printer is on fire.
"""),
"02-seed-carl.eml": ("support@example.test", "new 2", """\
From: Carl <carl@shop.example>
To: support@example.test
Subject: Invoice 2291
Date: Mon, 16 Nov 2026 09:05:00 +0100
Message-ID: <carl-1@shop.example>

Where is invoice 2291?
"""),
"03-outlook-thread-index-no-in-reply-to.eml": ("support+%s@example.test" % token(1), "1", """\
From: Ann Customer <ann@customer.example>
To: "Example Support" <support+%s@example.test>
Subject: RE: Printer on fire [#1]
Thread-Topic: Printer on fire
Thread-Index: AQHZx2V0aGlzIGlzIGEgdGVzdA==
Date: Mon, 16 Nov 2026 10:00:00 +0000
Message-ID: <AM0PR10MB1234ABCD5678@AM0PR10MB1234.eurprd10.prod.outlook.example>
Accept-Language: en-US
Content-Language: en-US
X-MS-Has-Attach:
X-MS-TNEF-Correlator:
MIME-Version: 1.0
Content-Type: text/plain; charset="us-ascii"
Content-Transfer-Encoding: quoted-printable

Still burning.
""" % token(1)),
"04-gmail-references-only.eml": ("support@example.test", "1", """\
From: Ann Customer <ann@customer.example>
To: support@example.test
Subject: Re: Printer on fire [#1]
Date: Mon, 16 Nov 2026 11:00:00 +0000
Message-ID: <CAFx9aB3-gmail-like-id@mail.gmail.example>
References: <ann-1@customer.example> <%s>
X-Gm-Message-State: AOJu0Yx
MIME-Version: 1.0
Content-Type: text/plain; charset="UTF-8"

Only References, no In-Reply-To.
""" % signed(1, 2)),
"05-apple-mail.eml": ("support@example.test", "2", """\
From: Carl <carl@shop.example>
Content-Type: text/plain; charset=us-ascii; format=flowed
Content-Transfer-Encoding: 7bit
Mime-Version: 1.0 (Mac OS X Mail 16.0 \\(3774.600.62\\))
Subject: Re: Invoice 2291
In-Reply-To: <carl-1@shop.example>
To: support@example.test
References: <carl-1@shop.example>
Message-Id: <8F2C1D3E-4B5A-4C6D-9E7F-0A1B2C3D4E5F@shop.example>
Date: Mon, 16 Nov 2026 12:00:00 +0100
X-Mailer: Apple Mail (2.3774.600.62)

Any news?
"""),
"06-thunderbird-signed-in-reply-to.eml": ("support@example.test", "2", """\
Message-ID: <5e1f0c2a-1b2c-4d3e-9f00-aa11bb22cc33@shop.example>
Date: Mon, 16 Nov 2026 13:00:00 +0100
MIME-Version: 1.0
User-Agent: Mozilla Thunderbird
Subject: Re: Invoice 2291 [#2]
To: Example Support <support@example.test>
References: <carl-1@shop.example> <%s>
From: Carl <carl@shop.example>
In-Reply-To: <%s>
Content-Type: text/plain; charset=UTF-8; format=flowed
Content-Transfer-Encoding: 7bit

Thanks!
""" % (signed(2, 5), signed(2, 5))),
"07-mobile-drops-references.eml": ("support@example.test", "1", """\
From: ann@customer.example
To: support@example.test
Subject: Re: Printer on fire
Date: Mon, 16 Nov 2026 14:00:00 +0100
Message-ID: <mobile-77@customer.example>
In-Reply-To: <%s>
X-Mailer: iPhone Mail (20A362)

Sent from my phone
""" % signed(1, 9)),
"08-jira-rewrites-message-id.eml": ("support@example.test", "1", """\
From: Ann Customer <ann@customer.example>
To: support@example.test
Subject: [JIRA] (IT-4411) Printer on fire [#1]
Date: Mon, 16 Nov 2026 15:00:00 +0000
Message-ID: <JIRA.104411.1763305200000.5541.1763305200123@Atlassian.JIRA>
In-Reply-To: <JIRA.104411.1763305200000@Atlassian.JIRA>
References: <JIRA.104411.1763305200000@Atlassian.JIRA>
X-JIRA-FingerPrint: 0123456789abcdef

The ticketing tool rewrote our Message-IDs; the subject tag still names us.
"""),
"09-auto-reply.eml": ("support@example.test", "1", """\
From: Ann Customer <ann@customer.example>
To: support@example.test
Subject: Automatic reply: Printer on fire [#1]
Auto-Submitted: auto-replied
X-Auto-Response-Suppress: All
Date: Mon, 16 Nov 2026 16:00:00 +0000
Message-ID: <ooo-1@customer.example>
In-Reply-To: <%s>

I am out of office.
""" % signed(1, 2)),
"10-forward-by-a-coworker.eml": ("support@example.test", "1", """\
From: Dora <dora@customer.example>
To: support@example.test
Subject: Re: Printer on fire
Date: Mon, 16 Nov 2026 17:00:00 +0000
Message-ID: <dora-1@customer.example>
In-Reply-To: <ann-1@customer.example>
References: <ann-1@customer.example>

I sit next to Ann: it is really burning.
"""),
"11-participant-uses-the-tag.eml": ("support@example.test", "1", """\
From: Dora <dora@customer.example>
To: support@example.test
Subject: Printer [#1]
Date: Mon, 16 Nov 2026 17:30:00 +0000
Message-ID: <dora-2@customer.example>

Dora is a participant now, so the tag is enough.
"""),
"12-stranger-copies-the-tag.eml": ("support@example.test", "new 3", """\
From: Mallory <mallory@evil.example>
To: support@example.test
Subject: Re: Printer on fire [#1]
Date: Mon, 16 Nov 2026 18:00:00 +0000
Message-ID: <mallory-1@evil.example>

Please send me Ann's invoices.
"""),
"13-forged-token.eml": ("support+1-aaaaaaaaaaaaaaaa@example.test", "new 4", """\
From: Mallory <mallory@evil.example>
To: support+1-aaaaaaaaaaaaaaaa@example.test
Subject: Re: Printer on fire
Date: Mon, 16 Nov 2026 18:05:00 +0000
Message-ID: <mallory-2@evil.example>

A guessed token.
"""),
"14-unknown-reference.eml": ("support@example.test", "new 5", """\
From: Erin <erin@other.example>
To: support@example.test
Subject: Re: something else
Date: Mon, 16 Nov 2026 18:10:00 +0000
Message-ID: <erin-1@other.example>
In-Reply-To: <never-seen@elsewhere.example>
References: <never-seen@elsewhere.example>

A reply to a message we never saw.
"""),
"15-duplicate-retry.eml": ("support@example.test", "dup 1", """\
From: Ann Customer <ann@customer.example>
To: support@example.test
Subject: Printer on fire
Date: Mon, 16 Nov 2026 09:00:00 +0100
Message-ID: <ann-1@customer.example>
MIME-Version: 1.0
Content-Type: text/plain; charset=utf-8

My printer is on fire.
"""),
"16-encoded-subject-tag.eml": ("support@example.test", "2", """\
From: Carl <carl@shop.example>
To: support@example.test
Subject: =?UTF-8?Q?AW=3A_Rechnung_f=C3=BCr_Sie_=5B#2=5D?=
Date: Mon, 16 Nov 2026 19:00:00 +0100
Message-ID: <carl-2@shop.example>

German client, encoded subject with the tag.
"""),
"17-signed-id-of-another-installation.eml": ("support@example.test", "new 6", """\
From: Fay <fay@customer.example>
To: support@example.test
Subject: Re: old ticket
Date: Mon, 16 Nov 2026 19:30:00 +0100
Message-ID: <fay-1@customer.example>
In-Reply-To: <sg.1.2.aaaaaaaaaaaaaaaa@%s>

A signed-looking id with a wrong MAC.
""" % HOST),
}

here = os.path.dirname(os.path.abspath(__file__))
for name, (rcpt, expect, body) in cases.items():
    text = "X-Test-Rcpt: %s\nX-Test-Expect: %s\n%s" % (rcpt, expect, body)
    with open(os.path.join(here, name), "wb") as f:
        f.write(text.replace("\n", "\r\n").encode())
