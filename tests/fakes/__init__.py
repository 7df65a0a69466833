"""Fakes of the outside world at the network boundary: real HTTP/websocket servers on 127.0.0.1."""
