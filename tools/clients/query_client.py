"""A minimal Python client of originwatch's QueryService, from stubs that
grpc_tools.protoc generated from proto/originwatch/v1 (the proto is the
contract; this proves the wire format against gRPC's C-core).

usage: query_client.py STUBS_DIR HOST:PORT [ORIGIN]
Prints one JSON line per step: each ListOrigins page (every list pages:
follow next_page_token until it is empty), "watching" once the
WatchEvents stream is open, then the first event received.
"""
import json
import sys

sys.path.insert(0, sys.argv[1])

import grpc  # noqa: E402
from google.protobuf import json_format  # noqa: E402
from originwatch.v1 import query_pb2, query_pb2_grpc  # noqa: E402


def emit(kind, msg=None, **extra):
    line = {"step": kind, **extra}
    if msg is not None:
        line["message"] = json_format.MessageToDict(msg)
    print(json.dumps(line), flush=True)


def main():
    target = sys.argv[2]
    origin = sys.argv[3] if len(sys.argv) > 3 else ""
    with grpc.insecure_channel(target) as channel:
        stub = query_pb2_grpc.QueryServiceStub(channel)
        token = ""
        while True:
            page = stub.ListOrigins(query_pb2.ListOriginsRequest(page_token=token), timeout=30)
            emit("ListOrigins", page)
            token = page.next_page_token
            if not token:
                break
        stream = stub.WatchEvents(query_pb2.WatchEventsRequest(origin=origin), timeout=180)
        # grpc starts the call here; the server may hold its headers until the first event.
        emit("watching")
        for response in stream:
            emit("event", response.event)
            break
        stream.cancel()


if __name__ == "__main__":
    main()
