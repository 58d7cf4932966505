"""portal.redis_direct: the hot paths' Redis commands on connections of their own, against a real Redis."""
import os
import socket
import threading
import uuid

import pytest
import redis
from fixtures.support import REDIS_URL

from portal.redis_direct import direct

pytestmark = pytest.mark.skipif(not REDIS_URL, reason="needs a real Redis (TEST_REDIS_URL)")


@pytest.fixture
def client():
    client = redis.Redis.from_url(REDIS_URL)
    yield client
    client.close()


def test_commands_and_their_replies_are_redis_pys(client):
    key = f"test:direct:{uuid.uuid4().hex}"
    commands = direct(client)
    assert commands is direct(client)
    assert commands.execute("SET", key, "ä", "NX", "PX", 5000) == b"OK"
    assert commands.execute("SET", key, b"other", "NX", "PX", 5000) is None
    assert client.get(key) == "ä".encode()
    with pytest.raises(redis.ResponseError):
        commands.execute("INCR", key)  # not a number: Redis's error, and the connection is still good
    assert commands.execute("DEL", key) == 1


def test_a_connection_redis_closed_is_replaced_and_the_command_still_runs(client):
    commands = direct(client)
    own_id = commands.execute("CLIENT", "ID")
    client.client_kill_filter(_id=own_id)  # as Redis does to idle clients (timeout) or on restart
    assert commands.execute("PING") == b"PONG"
    assert commands.execute("CLIENT", "ID") != own_id


def test_a_script_redis_has_forgotten_is_loaded_again(client):
    script = client.register_script("return tonumber(ARGV[1]) + 1")
    commands = direct(client)
    assert commands.run(script, [], [41]) == 42
    client.script_flush()
    assert commands.run(script, [], [1]) == 2


def test_each_thread_and_each_forked_process_has_its_own_connection(client):
    commands = direct(client)
    main_id = commands.execute("CLIENT", "ID")
    other = []
    thread = threading.Thread(target=lambda: other.append(commands.execute("CLIENT", "ID")))
    thread.start()
    thread.join()
    assert other and other[0] != main_id
    assert commands.execute("CLIENT", "ID") == main_id  # this thread's connection is kept

    reader, writer = os.pipe()
    pid = os.fork()
    if pid == 0:  # the child: a connection of its own, not the parent's socket
        try:
            os.write(writer, str(commands.execute("CLIENT", "ID")).encode())
        finally:
            os._exit(0)
    os.close(writer)
    child_id = int(os.read(reader, 64))
    os.waitpid(pid, 0)
    assert child_id != main_id
    assert commands.execute("CLIENT", "ID") == main_id


def test_values_redis_py_would_refuse_are_refused_before_sending(client):
    commands = direct(client)
    for value in (True, None, [1], {"a": 1}):
        with pytest.raises(redis.DataError):
            commands.execute("SET", f"test:direct:{uuid.uuid4().hex}", value)
    assert commands.execute("PING") == b"PONG"  # nothing half-sent


def test_a_timeout_is_not_retried_the_command_may_have_run():
    """A server that takes the command and never answers: the rate-limit script or the marker must not run twice."""
    received = []
    with socket.socket() as server:
        server.bind(("127.0.0.1", 0))
        server.listen()

        def accept():
            while True:  # a retry would come on a new connection
                try:
                    connection, _ = server.accept()
                except OSError:  # the test is over
                    return
                with connection:
                    while data := connection.recv(4096):
                        received.append(data)
                        connection.sendall(b"+OK\r\n" * data.count(b"SETINFO"))  # the handshake: answered

        threading.Thread(target=accept, daemon=True).start()
        silent = redis.Redis(host="127.0.0.1", port=server.getsockname()[1], socket_timeout=0.3, protocol=2)
        with pytest.raises(redis.TimeoutError):
            direct(silent).execute("INCR", "counter")
        silent.close()
    assert b"".join(received).count(b"INCR") == 1
