"""Envelope addresses on the wire: IDNA 2008 domains and SMTPUTF8.

This module owns how an address that ``send()`` accepted becomes what
``MAIL FROM`` and ``RCPT TO`` carry: its addr-spec without a display name,
with a Unicode domain in its IDNA 2008 A-label form (UTS #46 mapping, by
the `idna` package: Python's built-in ``idna`` codec is IDNA 2003, which
maps some names differently, ``ß`` for one), and whether its local part
needs the relay to offer ``SMTPUTF8`` (RFC 6531).  An address that cannot
be encoded at all (an invalid internationalized domain name) is a
``ValueError`` naming it; ``send()`` raises it before anything is queued.
ASCII domains are left exactly as given: DNS allows names (``_dmarc``,
``my_host``) that IDNA does not, and they need no encoding.
"""
import re
from email.utils import parseaddr

import idna


# A display name must be quoted when it holds one of these (RFC 5322).
_SPECIALS = re.compile(r'[][\\()<>@,:;".]')
# What needs no parsing: an addr-spec without quotes, brackets or comments.
_BARE = re.compile(r'[^\s<>()"\\,;:]+')


def join_address(name, addr_spec):
    """*name* and *addr_spec* as one address (``Name <addr>``); unlike
    `email.utils.formataddr` it takes a non-ASCII addr-spec, and keeps a
    non-ASCII *name* as it is."""
    if not name:
        return addr_spec
    if _SPECIALS.search(name):
        name = '"%s"' % name.replace('\\', '\\\\').replace('"', '\\"')
    return f'{name} <{addr_spec}>'


def split_address(address):
    """``(display name, addr-spec)`` of *address*: ``'Ann <a@x.org>'`` is
    ``('Ann', 'a@x.org')``; the empty sender (``''`` or ``'<>'``) has an
    empty addr-spec."""
    address = address.strip()
    if _BARE.fullmatch(address):
        return '', address
    return parseaddr(address)


def encode_domain(domain):
    """*domain* in its IDNA 2008 A-label form (UTS #46 mapping: case,
    full-width dots); an ASCII *domain* unchanged.  Raises ValueError,
    with `idna`'s reason, for a name that cannot be encoded."""
    if domain.isascii():
        return domain
    if domain.startswith('['):
        raise ValueError('an address literal ([...]) must be ASCII')
    try:
        # uts46 maps the whole name first, so that a full-width dot
        # separates labels; then each non-ASCII label is checked and
        # encoded by IDNA 2008 rules, and ASCII labels are kept.
        mapped = idna.uts46_remap(domain, std3_rules=False,
                                  transitional=False)
        labels = mapped.split('.')
        if labels[-1] == '':
            labels.pop()  # a fully qualified name's trailing dot
        encoded = [label if label.isascii() else
                   idna.alabel(label).decode('ascii') for label in labels]
    except (idna.IDNAError, UnicodeError) as e:
        raise ValueError(str(e) or type(e).__name__) from None
    if '' in encoded:
        raise ValueError('empty label')
    result = '.'.join(encoded) + ('.' if mapped.endswith('.') else '')
    if len(result.rstrip('.')) > 253:
        raise ValueError('the name is longer than 253 characters')
    return result


def wire_address(address, what='address'):
    """``(addr_spec, needs_smtputf8)`` for *address* as ``MAIL FROM`` or
    ``RCPT TO`` carry it: no display name, an A-label domain, and whether
    the local part is non-ASCII.  *what* (``"sender"``, ``"recipient"``)
    names the address in the ValueError of an invalid domain."""
    addr_spec = split_address(address)[1]
    local, at, domain = addr_spec.rpartition('@')
    if not at:
        return addr_spec, not addr_spec.isascii()
    try:
        domain = encode_domain(domain)
    except ValueError as e:
        raise ValueError(f'{what} {address!r}: the domain {domain!r} is not'
                         f' a valid internationalized domain name: {e}') \
            from None
    return f'{local}@{domain}', not local.isascii()


def stored_address(address, what='address'):
    """*address* as the queue file's envelope stores it: as given, except
    that a Unicode domain is written as its A-label (zope.sendmail 7.3's
    reader takes those, and the relay gets them anyway).  Raises
    ValueError as `wire_address` does."""
    if address.isascii():
        return address
    name, addr_spec = split_address(address)
    wire, utf8 = wire_address(addr_spec, what)
    if wire == addr_spec:
        return address
    return join_address(name, wire)


def wire_envelope(fromaddr, toaddrs):
    """``(sender, recipients, smtputf8)``: the wire form of *fromaddr*, a
    list of ``(address, wire form)`` for *toaddrs*, and the first address
    whose local part needs ``SMTPUTF8`` as ``(what, address)``, or None.
    Raises ValueError as `wire_address` does."""
    sender, utf8 = wire_address(fromaddr, 'sender')
    smtputf8 = ('sender', fromaddr) if utf8 else None
    recipients = []
    for address in toaddrs:
        wire, utf8 = wire_address(address, 'recipient')
        recipients.append((address, wire))
        if utf8 and smtputf8 is None:
            smtputf8 = ('recipient', address)
    return sender, recipients, smtputf8
