from django.contrib.auth.hashers import Argon2PasswordHasher


class Argon2idPasswordHasher(Argon2PasswordHasher):
    """Argon2id with OWASP's recommended minimum: 19 MiB of memory, 2 passes, 1 lane.

    Django's default (100 MiB, 8 lanes) costs about five times the memory per login; with several gunicorn
    threads logging users in at once inside a memory-limited container, memory is the resource that runs
    out first. The measured time per hash is in docs/decisions.md ("Password hashing"). Existing hashes
    with other parameters are upgraded at the next login.
    """

    time_cost = 2
    memory_cost = 19 * 1024  # KiB
    parallelism = 1
