"""The SMTP test server offering SASL XOAUTH2: `XOAUTH2Layer`, where
`USER` logs in with `TOKEN`."""
from zope.sendmail.testserver import make_layer


USER = 'shop@contoso.example'
TOKEN = 'eyJ0eXAi.cached-token.AbC'
XOAUTH2Layer = make_layer('XOAUTH2Layer', 'SMTP test server with XOAUTH2.',
                          oauth2={USER: TOKEN})
