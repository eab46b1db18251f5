"""The model-server worker's socket read that the handler module installs."""
import socket
import threading

import pytest
from mms.protocol import otf_message_handler

from container import handler


def test_the_worker_reads_through_read_exactly():
    assert otf_message_handler._retrieve_buffer is handler.read_exactly
    # ...and the server's message readers still look that name up when they run
    for reader in (otf_message_handler.retrieve_msg, otf_message_handler._retrieve_int,
                   otf_message_handler._retrieve_input_data):
        assert "_retrieve_buffer" in reader.__code__.co_names, reader.__name__


def test_a_message_sent_in_pieces_is_read_whole():
    message = bytes(range(256)) * 12_000  # 3 MB, more than a socket buffer holds
    ours, theirs = socket.socketpair()
    with ours, theirs:
        def send():
            for start in range(0, len(message), 100_003):
                theirs.sendall(message[start:start + 100_003])
            theirs.sendall(b"next")
        sender = threading.Thread(target=send)
        sender.start()
        data = handler.read_exactly(ours, len(message))
        rest = handler.read_exactly(ours, 4)
        sender.join()
    assert isinstance(data, bytearray) and data == message and rest == b"next"


def test_a_closed_connection_ends_the_read():
    ours, theirs = socket.socketpair()
    with ours:
        theirs.sendall(b"half")
        theirs.close()
        with pytest.raises(ValueError, match="Frontend disconnected"):
            handler.read_exactly(ours, 8)
