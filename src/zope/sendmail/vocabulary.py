"""The vocabulary of the names of the registered mail deliveries.

`MailDeliveryNames` is a vocabulary factory, registered by
``configure.zcml`` as the `IVocabularyFactory` utility "Mail Delivery
Names", for forms that let a user choose the `IMailDelivery` to send with.
"""
import logging

from zope.component import getUtilitiesFor
from zope.interface import provider
from zope.schema.interfaces import IVocabularyFactory
from zope.schema.vocabulary import SimpleVocabulary

from zope.sendmail.interfaces import IMailDelivery

# The other names 7.3's vocabulary module imported, for code that imports
# them from here (not the ``zope`` namespace package: import it).
from zope.interface import directlyProvides  # noqa: F401
from zope.schema.vocabulary import SimpleTerm  # noqa: F401


log = logging.getLogger(__name__)


@provider(IVocabularyFactory)
def MailDeliveryNames(context=None):
    """The names of the `IMailDelivery` utilities seen from *context*,
    sorted."""
    names = sorted(name for name, delivery
                   in getUtilitiesFor(IMailDelivery, context))
    return SimpleVocabulary.fromValues(names)
