"""A worker's read of the model server's messages through one buffer.

The stock read (``mms.protocol.otf_message_handler._retrieve_buffer``) makes a recv() call for
each field of a message, and grows a bytearray piece by piece for a body; ``install()`` puts
this one in its place.
"""

import logging

from mms.protocol import otf_message_handler

logger = logging.getLogger(__name__)


def _receive(connection, view, received, needed):
    """Fills ``view`` from ``connection`` past ``received`` bytes until it holds at least
    ``needed``; the count it then holds."""
    while received < needed:
        count = connection.recv_into(view[received:])
        if count == 0:
            logger.info("Frontend disconnected.")
            raise ValueError("Frontend disconnected")
        received += count
    return received


class SocketReader:
    """The small fields of a message (each header's name and value, each after its length) come
    from memory after one recv() for all of them; a field larger than the buffer is read
    straight into a bytearray of its own size. recv() is called only while the message asked
    for is not all in, so it never waits for more than the server is sending."""

    SIZE = 65536

    def __init__(self):
        self.connection, self.buffer, self.start, self.end = None, bytearray(self.SIZE), 0, 0

    def read(self, connection, length):
        """The next ``length`` bytes from ``connection``, as a bytearray of their own."""
        if connection is not self.connection:  # nothing buffered comes from a new connection
            self.connection, self.start, self.end = connection, 0, 0
        have = self.end - self.start
        if length <= have:
            self.start += length
            return self.buffer[self.start - length : self.start]
        if length > self.SIZE:
            data = bytearray(length)
            data[:have] = self.buffer[self.start : self.end]
            self.start = self.end = 0
            with memoryview(data) as view:
                _receive(connection, view, have, length)
            return data
        self.buffer[:have] = self.buffer[self.start : self.end]  # what is left, to the front
        self.start, self.end = 0, have
        with memoryview(self.buffer) as view:
            self.end = _receive(connection, view, have, length)
        self.start = length
        return self.buffer[:length]


def install():
    """The worker reads every message through this name, looked up at each call."""
    otf_message_handler._retrieve_buffer = SocketReader().read
