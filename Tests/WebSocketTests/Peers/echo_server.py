"""Echo server from the `websockets` library (PyPI), a peer we did not write.
Echoes every message, binary ones over 1 MiB as fragments of 256 KiB; the text "ping-me" makes
it ping and answer "pong-ok" once our pong arrives; "close:<code>" makes it close with that code.
Prints its port on stdout, then serves until killed."""
import asyncio
import sys

from websockets.asyncio.server import serve


async def echo(ws):
    async for message in ws:
        if isinstance(message, str) and message.startswith("close:"):
            await ws.close(code=int(message[6:]), reason="bye")
            return
        if message == "ping-me":
            pong = await ws.ping(b"from the server")
            await asyncio.wait_for(pong, 10)
            await ws.send("pong-ok")
        elif isinstance(message, bytes) and len(message) > 1 << 20:
            await ws.send([message[i:i + (1 << 18)] for i in range(0, len(message), 1 << 18)])
        else:
            await ws.send(message)


async def main():
    async with serve(echo, "127.0.0.1", 0, max_size=None, compression=None) as server:
        port = server.sockets[0].getsockname()[1]
        print(port, flush=True)
        await asyncio.get_running_loop().create_future()


asyncio.run(main())
