"""Envelope addresses on the wire: what they may hold, IDNA 2008 domains
and SMTPUTF8.

This module owns how an address that ``send()`` accepted becomes what
``MAIL FROM`` and ``RCPT TO`` carry: its addr-spec without a display name,
with a Unicode domain in its IDNA 2008 A-label form (UTS #46 mapping, by
the `idna` package: Python's built-in ``idna`` codec is IDNA 2003, which
maps some names differently, ``ß`` for one), and whether its local part
needs the relay to offer ``SMTPUTF8`` (RFC 6531).  It also owns the rules
an address must follow to get there, each a ``ValueError`` naming the
problem and showing the address with ``repr()``; ``send()`` raises it
before anything is queued:

- no control character (C0, DEL, C1) and no Unicode line or paragraph
  separator anywhere in it: they would end a queue file's envelope line,
  inject SMTP commands, or act on the terminal of whoever reads it;
- a local part that SMTP can carry as it is (RFC 5321, RFC 6531): letters,
  digits, ``!#$%&'*+-/=?^_`{|}~``, dots (anywhere: some providers hand out
  ``a..b`` local parts) and any non-ASCII character; anything else inside
  a quoted string (``"John Doe"@example.com``); an address without a
  domain (``root``, which the relay completes) only in ASCII;
- a domain that is a host name or an address literal (`encode_domain`),
  whatever mapping turned it into one.  A look-alike character that the
  UTS #46 mapping turns into a separator (``\uff0c`` into ``,``, ``\uff20``
  into ``@``, ``\u00a0`` into a space) could otherwise add recipients or
  cut an address short.
"""
import ipaddress
import re
from email.utils import getaddresses
from email.utils import parseaddr

import idna


# A display name must be quoted when it holds one of these (RFC 5322).
_SPECIALS = re.compile(r'[][\\()<>@,:;".]')
# What needs no parsing: an addr-spec without quotes, brackets or comments.
_BARE = re.compile(r'[^\s<>()"\\,;:]+')
# Never in an address: C0 and C1 controls, DEL, and the line and paragraph
# separators that Python's str.splitlines() and some log viewers break on.
_CONTROL = re.compile(r'[\x00-\x1f\x7f-\x9f\u2028\u2029]')
_LINE_BREAK_OR_NUL = '\r\n\x00'
# A host name: labels of letters, digits, hyphens and underscores (DNS
# has names like _dmarc and my_host that IDNA refuses), each of 1 to 63
# characters, dots between them, and the final dot of a fully qualified
# name; nothing that separates addresses in a list or words of a command.
_LABEL = r'[A-Za-z0-9_-]{1,63}'
_HOST_NAME = re.compile(rf'{_LABEL}(?:[.]{_LABEL})*[.]?')
_NOT_IN_HOST_NAME = re.compile(r'[^A-Za-z0-9_.-]')
# An address literal (RFC 5321 4.1.3): [IPv4 address] or [IPv6:address].
_LITERAL = re.compile(r'\[(IPv6:)?([0-9A-Fa-f.:]+)\]')
# A local part SMTP carries as it is: a dot-string of atext (RFC 5321,
# with UTF-8 from RFC 6531), dots anywhere; or a quoted string.
# Unicode's space separators (Zs) are no atext: invisible, they would
# make "\xa0ann@x.org" look like ann@x.org, and parsers strip them.
_UNICODE_SPACES = '\xa0\u1680\u2000-\u200a\u202f\u205f\u3000'
_ATEXT = (r"A-Za-z0-9!#$%&'*+/=?^_`{|}~.\-\x80-\x9f\xa1-\u167f"
          r"\u1681-\u1fff\u200b-\u202e\u2030-\u205e\u2060-\u2fff"
          r"\u3001-\U0010ffff")
_DOT_STRING = re.compile(f'[{_ATEXT}]+')
_NOT_ATEXT = re.compile(f'[^{_ATEXT}]')
# The common case, which every rule above lets through as it is: an
# ASCII dot-string, "@", a host name (checked for length apart).
_SIMPLE = re.compile(
    rf"[A-Za-z0-9!#$%&'*+/=?^_`{{|}}~.-]+@{_HOST_NAME.pattern}")
# What needs no parsing: one plain addr-spec; a list of them.
_PLAIN_ADDRESS = re.compile(r'[^\s,;:<>()\[\]"\\@]+@[^\s,;:<>()\[\]"\\@]+')
_PLAIN_LIST = re.compile(
    _PLAIN_ADDRESS.pattern + '(?:, ' + _PLAIN_ADDRESS.pattern + ')*')
_QUOTED = re.compile(r'"(?:[^"\\]|\\[ -~])*"')
# How an address is written (RFC 5322's name-addr and addr-spec, without
# what the e-mail parser would quietly drop or mend): an addr-spec, maybe
# followed by a comment, or a display name and the addr-spec in angle
# brackets.  A local part is a dot-string or a quoted string; the domain
# is checked by `encode_domain`.  No nested comments, no group syntax.
_QSTRING = r'"(?:[^"\\]|\\.)*"'
_COMMENT = r'\((?:[^()\\]|\\.)*\)'
_WORD = rf'(?:{_QSTRING}|{_COMMENT}|[{_ATEXT}{_UNICODE_SPACES}]+)'
_ADDR_SPEC = (rf'(?:{_QSTRING}|[{_ATEXT}]+)'
              r'(?:@(?:\[[^][\\ ]*\]|[^][ <>()"\\,;:@]+))?')
_WRITTEN = re.compile(
    rf' *(?:(?P<bare>{_ADDR_SPEC})(?: +{_COMMENT})?'
    rf'|(?:{_WORD}(?: *{_WORD})* *)?<(?P<angle>{_ADDR_SPEC})>(?: *{_COMMENT})?'
    rf') *')


def control_character(text):
    """The first character of *text* that no address, envelope line or
    ``Message-Id`` may hold (a C0 or C1 control, DEL, U+2028 or U+2029),
    or None."""
    match = _CONTROL.search(text)
    return match.group() if match else None


def control_error(what, text):
    """The ValueError for *text* (*what*: ``"sender"``, ``"Message-Id"``)
    holding a control character, or None when it holds none."""
    char = control_character(text)
    if char is None:
        return None
    if char in _LINE_BREAK_OR_NUL:
        problem = 'a line break or NUL character'
    elif char in '\x85\u2028\u2029':
        problem = f'a line break (U+{ord(char):04X})'
    else:
        problem = f'a control character (U+{ord(char):04X})'
    return ValueError(f'{what} contains {problem}: {text!r}')


def written_problem(address):
    """Why *address* is not written as one address, or None: RFC 5322's
    addr-spec (maybe followed by a comment) or name-addr, without what the
    e-mail parser would quietly drop or mend (see `read_problem`)."""
    if _WRITTEN.fullmatch(address):
        return None
    return _unwritten(address)


def read_problem(address):
    """Why the e-mail parser does not read *address*, written as one
    address (`written_problem`), as the addr-spec written, or None.

    The parser is lenient: it drops the name of RFC 5322's group syntax
    (``a:b@x.org`` is b@x.org), closes an unbalanced quote, comment or
    angle bracket, and removes comments and spaces inside an addr-spec
    (``a(b)c@x.org`` is ac@x.org).  The address that goes on the wire, and
    the one the queue file's reader finds, must be the one written.
    """
    match = _WRITTEN.fullmatch(address)
    written = match.group('bare') or match.group('angle')
    read = {addr for name, addr in getaddresses([address])}
    read.add(parseaddr(address)[1])
    if read == {written}:
        return None
    read.discard('')
    if not read:
        return 'is not read as an address by the e-mail parser'
    return 'reads as ' + ', '.join(repr(a) for a in sorted(read))


def _unwritten(address):
    """What is wrong with *address*, which is not written as an address:
    the first separator outside quotes, comments and literals, or what is
    left open; else a hint of the forms."""
    closing = None   # what ends the quote, literal, comment or angle
    depth = 0        # of nested comments
    escaped = False
    for char in address:
        if escaped:
            escaped = False
        elif char == '\\' and closing != ']':
            escaped = True
        elif closing == ')' and char == '(':
            depth += 1
        elif closing is not None:
            if char == closing:
                depth -= closing == ')'
                if depth == 0:
                    closing = None
        elif char in '"[(<':
            closing = {'"': '"', '[': ']', '(': ')', '<': '>'}[char]
            depth = char == '('
        elif char in ':;':
            return f'holds {char!r} outside quotes (group syntax)'
    if closing is not None:
        return 'leaves ' + {'"': 'a quoted string', ']': 'a domain literal',
                            ')': 'a comment', '>': 'an angle bracket'}[
                                closing] + ' open'
    return NOT_WRITTEN


#: `written_problem`'s answer when nothing more precise is known.
NOT_WRITTEN = ('is not written as one (give name@example.com, or Name'
               ' <name@example.com>)')


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
    # Only ASCII white space: str.strip() would take U+00A0 and the like
    # too, which the e-mail parser keeps.
    address = address.strip(' \t')
    if _BARE.fullmatch(address):
        return '', address
    return parseaddr(address)


def encode_domain(domain):
    """*domain* as ``MAIL FROM`` and ``RCPT TO`` carry it: a Unicode name
    in its IDNA 2008 A-label form (UTS #46 mapping: case, full-width
    dots), an ASCII one unchanged.

    Raises ValueError, naming the problem, unless the result is a host
    name (labels of letters, digits, hyphens and underscores, at most 63
    characters each and 253 in all, dots between them, a final dot
    allowed) or an address literal (``[192.0.2.1]``, ``[IPv6:2001:db8::1]``);
    the IDNA checks of non-ASCII labels are `idna`'s.  ASCII labels are not
    held to IDNA's rules: DNS has names (``_dmarc``, ``my_host``) that IDNA
    refuses.
    """
    if domain.isascii():
        _check_host_name(domain, domain, domain)
        return domain
    if domain.startswith('['):
        raise ValueError(f'the domain {domain!r} is not a host name: an'
                         f' address literal ([...]) must be ASCII')
    try:
        # uts46 maps the whole name first, so that a full-width dot
        # separates labels; then each non-ASCII label is checked and
        # encoded by IDNA 2008 rules, and ASCII labels are kept (and
        # checked below, as the mapping may have made them of anything).
        mapped = idna.uts46_remap(domain, std3_rules=False,
                                  transitional=False)
        labels = mapped.split('.')
        if labels[-1] == '':
            labels.pop()  # a fully qualified name's trailing dot
        encoded = [label if label.isascii() else
                   idna.alabel(label).decode('ascii') for label in labels]
    except (idna.IDNAError, UnicodeError) as e:
        raise ValueError(f'the domain {domain!r} is not a valid'
                         f' internationalized domain name:'
                         f' {str(e) or type(e).__name__}') from None
    result = '.'.join(encoded) + ('.' if mapped.endswith('.') else '')
    _check_host_name(result, domain, mapped)
    return result


def _check_host_name(result, domain, mapped):
    """Raise a ValueError saying why *result*, the encoded form of
    *domain* (*mapped* by UTS #46), is not a host name or address
    literal."""
    if result.startswith('['):
        if _is_literal(result):
            return
        raise ValueError(f'the domain {domain!r} is not an address literal:'
                         f' give [IPv4 address] or [IPv6:IPv6 address]')
    if _HOST_NAME.fullmatch(result) and len(result.rstrip('.')) <= 253:
        return
    bad = _NOT_IN_HOST_NAME.search(result)
    if bad:
        problem = (f'{bad.group()!r} is not allowed (letters, digits,'
                   f' hyphens and underscores, dots between labels)')
    elif not result:
        problem = 'it is empty'
    elif '' in result.rstrip('.').split('.'):
        problem = 'it has an empty label'
    elif len(result.rstrip('.')) > 253:
        problem = 'it is longer than 253 characters'
    else:
        problem = 'a label is longer than 63 characters'
    if mapped != domain:
        # Say what the look-alike characters became: the mapped name is
        # what could have added recipients or cut the address short.
        raise ValueError(f'the domain {domain!r} maps to {mapped!r} (IDNA'
                         f' 2008, UTS #46), which is not a host name:'
                         f' {problem}')
    raise ValueError(f'the domain {domain!r} is not a host name: {problem}')


def _is_literal(text):
    match = _LITERAL.fullmatch(text)
    if match is None:
        return False
    version = ipaddress.IPv6Address if match.group(1) else \
        ipaddress.IPv4Address
    try:
        version(match.group(2))
    except ValueError:
        return False
    return True


def _check_local_part(local):
    """Raise a ValueError unless SMTP can carry *local* as it is."""
    if _DOT_STRING.fullmatch(local) or _QUOTED.fullmatch(local):
        return
    if not local:
        raise ValueError('the local part is empty')
    if local.startswith('"'):
        raise ValueError(f'the local part {local!r} is not a well-formed'
                         f' quoted string')
    bad = _NOT_ATEXT.search(local).group()
    raise ValueError(f'the local part {local!r} holds {bad!r}, which needs'
                     f' quotes ("...")')


def wire_address(address, what='address'):
    """``(addr_spec, needs_smtputf8)`` for *address* as ``MAIL FROM`` or
    ``RCPT TO`` carry it: no display name, an A-label domain, and whether
    the local part is non-ASCII.  Raises ValueError when *address* breaks
    one of this module's rules; *what* (``"sender"``, ``"recipient"``)
    names the address in it."""
    if len(address) < 254 and _SIMPLE.fullmatch(address):
        return address, False  # nothing to parse, map or refuse
    error = control_error(what, address)
    if error is not None:
        raise error
    addr_spec = split_address(address)[1]
    local, at, domain = addr_spec.rpartition('@')
    try:
        if not at:
            # A bare local name (``root``), or the empty sender.
            if addr_spec:
                _check_local_part(addr_spec)
                if not addr_spec.isascii():
                    # The relay adds its own domain; a look-alike of "@"
                    # (U+FF20) could become one where it normalizes.
                    raise ValueError('an address without a domain must be'
                                     ' ASCII')
            return addr_spec, False
        _check_local_part(local)
        domain = encode_domain(domain)
    except ValueError as e:
        raise ValueError(f'{what} {address!r}: {e}') from None
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


def check_address(address, what='address'):
    """Return *address* if it is safe to put in an envelope, else raise.

    *what* names the address in the error (``"sender"``, ``"recipient"``).
    A non-string is a TypeError.  A ValueError refuses an address that
    breaks a rule of `zope.sendmail.addresses` (a control character, which
    could inject header lines into the queue file, commands into the SMTP
    session or escape sequences into a terminal; a local part SMTP cannot
    carry; a domain that is not a host name, whatever mapping made it
    one), and a string that is not one address, or that the e-mail
    parser reads otherwise than the address the relay would be given.
    """
    _checked_wire(address, what)
    return address


def _checked_wire(address, what):
    """The wire form of *address* (`check_address`); empty for the empty
    sender (``''``, ``'<>'``)."""
    if not isinstance(address, str):
        raise TypeError(
            f'{what} must be a string, not {type(address).__name__}:'
            f' {address!r}')
    empty = address.strip() in ('', '<>')
    if not empty and not _PLAIN_ADDRESS.fullmatch(address):
        # Not the common case: is it written as one address?  (Then, once
        # its parts are checked, whether the e-mail parser, which the
        # queue file's reader uses, reads it as written.)
        error = control_error(what, address)
        if error is not None:
            raise error  # before the parser sees it
        problem = written_problem(address)
        if problem is NOT_WRITTEN:
            # A part of it may break a rule that says more ("the local
            # part 'Ann Lee' holds ' '"): that error first.
            wire_address(address, what)
        if problem is not None:
            raise ValueError(f'{what} is not a single e-mail address:'
                             f' {address!r} {problem}')
    wire = wire_address(address, what)[0]
    if not wire and not empty:
        # Something the parser makes nothing of (``Ann <@x.org>``) must
        # not pass for the empty sender.
        raise ValueError(f'{what} is not a single e-mail address:'
                         f' {address!r}')
    if not empty and not _PLAIN_ADDRESS.fullmatch(address):
        problem = read_problem(address)
        if problem is not None:
            raise ValueError(f'{what} is not a single e-mail address:'
                             f' {address!r} {problem}')
    return wire


def check_recipients(toaddrs):
    """Return *toaddrs* as a tuple of checked recipient strings.

    Each recipient must be one address (`check_address`; a display name
    may contain commas inside quotes), and the ``X-Zope-To`` line must
    read back as exactly these recipients: as many, each with the wire
    form it has here.  That is checked for every list, not only for those
    that look unusual, since a plain-looking address is not always what
    it seems.
    """
    if isinstance(toaddrs, (str, bytes)):
        raise TypeError(
            f'toaddrs must be a sequence of addresses, not a single'
            f' {type(toaddrs).__name__}: {toaddrs!r}')
    try:
        toaddrs = tuple(toaddrs)
    except TypeError:
        raise TypeError(
            f'toaddrs must be a sequence of addresses, not'
            f' {type(toaddrs).__name__}') from None
    if not toaddrs:
        raise ValueError('no recipients given (toaddrs is empty)')
    wires = []
    for address in toaddrs:
        wire = _checked_wire(address, 'recipient')
        if not wire:
            raise ValueError(
                f'recipient is not a single e-mail address: {address!r}')
        wires.append(wire)
    # What the processor reads back must be what was written, or the
    # message could go to others than these (or never be sent at all).
    back = read_recipients(', '.join(
        stored_address(a, 'recipient') for a in toaddrs))
    if back != toaddrs:  # when equal (the common case), so are wire forms
        try:
            same = [wire_address(a)[0] for a in back] == wires
        except ValueError:
            same = False
        if not same:
            raise ValueError(f'recipients {list(toaddrs)!r} would not read'
                             f' back from the queue file as given')
    return toaddrs


def read_recipients(to_line):
    """The recipients of the text of an ``X-Zope-To`` line, as a tuple;
    those with display names in ``Name <address>`` form."""
    if _PLAIN_LIST.fullmatch(to_line):
        return tuple(to_line.split(', '))  # no parsing needed
    return tuple(join_address(*pair) for pair in getaddresses([to_line])
                 if pair[1])
