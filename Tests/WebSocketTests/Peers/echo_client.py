"""Client from the `websockets` library (PyPI) against our echo server: text, binary,
fragmented, 16 MiB, ping/pong, then a close with code 4002. Exits 0 and prints OK when every
echo matched."""
import asyncio
import os
import sys

from websockets.asyncio.client import connect


async def main(url):
    async with connect(url, max_size=None, compression=None) as ws:
        await ws.send("hello wörld")
        assert await ws.recv() == "hello wörld", "text"
        blob = os.urandom(1024)
        await ws.send(blob)
        assert await ws.recv() == blob, "binary"
        await ws.send([b"frag", b"ment", b"ed"])
        assert await ws.recv() == b"fragmented", "fragmented"
        await ws.send(["tex", "t frag"])
        assert await ws.recv() == "text frag", "fragmented text"
        big = os.urandom(16 << 20)
        await ws.send(big)
        assert await ws.recv() == big, "16 MiB"
        pong = await ws.ping(b"are you there")
        await asyncio.wait_for(pong, 10)
        await ws.close(code=4002, reason="done")
    print("OK", flush=True)


# Bounded, so a peer that stops answering fails the test instead of hanging it.
asyncio.run(asyncio.wait_for(main(sys.argv[1]), 60))
