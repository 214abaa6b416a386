"""The processor lease of another host: `write_lease` writes its record
into a queue as that host's processor would."""
import os
import time


def write_lease(queue, **fields):
    from zope.sendmail.stores.maildir.leasefile import LEASE
    record = {'host': 'elsewhere', 'boot_id': 'b', 'pidns': '1',
              'pid': '7', 'token': 'theirs', 'serial': '1',
              'renewed': f'{time.time():.3f}', 'timeout': '120'}
    record.update(fields)
    path = os.path.join(queue, LEASE)
    with open(path + '.new', 'w') as f:
        f.write(''.join(f'{k}: {v}\n' for k, v in record.items()))
    os.rename(path + '.new', path)
