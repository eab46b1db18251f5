"""The model-server worker's socket read that the handler module installs."""

import socket
import struct
import threading

import pytest
from mms.protocol import otf_message_handler

from container.serving import handler  # noqa: F401 - importing it installs the reader
from container.serving.socket_reader import SocketReader


def test_the_worker_reads_through_one_buffered_reader():
    assert isinstance(otf_message_handler._retrieve_buffer.__self__, SocketReader)
    # ...and the server's message readers still look that name up when they run
    for reader in (
        otf_message_handler.retrieve_msg,
        otf_message_handler._retrieve_int,
        otf_message_handler._retrieve_input_data,
    ):
        assert "_retrieve_buffer" in reader.__code__.co_names, reader.__name__


def send_in_pieces(sock, data, piece=100_003):
    def send():
        for start in range(0, len(data), piece):
            sock.sendall(data[start : start + piece])

    sender = threading.Thread(target=send)
    sender.start()
    return sender


def test_a_message_sent_in_pieces_is_read_whole():
    message = bytes(range(256)) * 12_000  # 3 MB, more than a socket buffer holds
    read = SocketReader().read
    ours, theirs = socket.socketpair()
    with ours, theirs:
        sender = send_in_pieces(theirs, b"ab" + message + b"next")
        head = read(ours, 2)
        data = read(ours, len(message))
        rest = read(ours, 4)
        sender.join()
    assert isinstance(data, bytearray) and data == message and (head, rest) == (b"ab", b"next")


def field(value):
    return struct.pack("!i", len(value)) + value


END = struct.pack("!i", -1)


def predict_message(request_id, headers, content_type, body):
    """A request as multi-model-server sends it to a worker."""
    return (
        b"I"
        + field(request_id)
        + b"".join(field(k) + field(v) for k, v in headers)
        + END
        + field(b"body")
        + field(content_type)
        + field(body)
        + END
        + END
    )


class CountingSocket:
    """A real socket that counts its recv_into calls."""

    def __init__(self, sock):
        self.sock, self.calls = sock, 0

    def recv_into(self, buffer):
        self.calls += 1
        return self.sock.recv_into(buffer)


def test_the_servers_messages_are_read_field_by_field_from_one_buffer():
    headers = [(b"Content-Type", b"application/x-npy"), (b"Accept", b"application/json")]
    large, small = bytes(range(256)) * 12_000, b"\x93NUMPY..."
    ours, theirs = socket.socketpair()
    with ours, theirs:
        counted = CountingSocket(ours)
        sender = send_in_pieces(
            theirs, predict_message(b"first", headers, b"application/x-npy", large)
        )
        cmd, first = otf_message_handler.retrieve_msg(counted)
        sender.join()
        calls = counted.calls  # as many as the kernel's deliveries of 3 MB: it varies with load
        theirs.sendall(predict_message(b"second", headers, b"application/x-npy", small))
        _, second = otf_message_handler.retrieve_msg(counted)
    assert cmd == b"I" and len(first) == len(second) == 1
    assert first[0]["requestId"] == b"first" and second[0]["requestId"] == b"second"
    assert [(h["name"], h["value"]) for h in first[0]["headers"]] == headers
    assert first[0]["parameters"][0]["value"] == large
    assert second[0]["parameters"][0]["value"] == small
    assert counted.calls - calls == 1  # all 20 fields of a small message from one recv()


def test_a_closed_connection_ends_the_read():
    ours, theirs = socket.socketpair()
    with ours:
        theirs.sendall(b"half")
        theirs.close()
        with pytest.raises(ValueError, match="Frontend disconnected"):
            SocketReader().read(ours, 8)
