"""Echo server from the `websockets` library (PyPI), a peer we did not write.
Echoes every message; the text "close:<code>" makes it close with that code.
Prints its port on stdout, then serves until killed."""
import asyncio
import sys

from websockets.asyncio.server import serve


async def echo(ws):
    async for message in ws:
        if isinstance(message, str) and message.startswith("close:"):
            await ws.close(code=int(message[6:]), reason="bye")
            return
        await ws.send(message)


async def main():
    async with serve(echo, "127.0.0.1", 0, max_size=None, compression=None) as server:
        port = server.sockets[0].getsockname()[1]
        print(port, flush=True)
        await asyncio.get_running_loop().create_future()


asyncio.run(main())
