"""Transactional e-mail for Zope: mail goes out only if the transaction
commits."""
