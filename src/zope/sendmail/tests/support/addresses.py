"""Addresses that look harmless and are not: `LOOK_ALIKES`."""


# Code points that the UTS #46 mapping turns into a character separating
# addresses in a list or words of an SMTP command (or into several).
LOOK_ALIKES = (
    '\u00a0\u037e\u2000\u2001\u2002\u2003\u2004\u2005\u2006\u2007\u2008'
    '\u2009\u200a\u202f\u205f\u207d\u207e\u208d\u208e\u2474\u249c\u2a74'
    '\u3000\ufe10\ufe13\ufe14\ufe35\ufe36\ufe47\ufe48\ufe50\ufe54\ufe55'
    '\ufe59\ufe5a\ufe64\ufe65\ufe68\ufe6b\uff02\uff08\uff09\uff0c\uff1a'
    '\uff1b\uff1c\uff1e\uff20\uff3b\uff3c\uff3d\U0001f101\U0001f110')
