"""The SMTP test server asking for a UTF-8 user name and password."""
from zope.sendmail.testserver import make_layer


PASSWORD = 'pässwörd-€'
UTF8AuthLayer = make_layer('UTF8AuthLayer', auth={'jörg': PASSWORD})
