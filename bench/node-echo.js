// node-echo.js: a Node.js `net` echo server, a peer for bench/compare.
//
//   node bench/node-echo.js PORT [HOST]
//
// The idiomatic Node echo: socket.pipe(socket) (back-pressure through the
// stream machinery), TCP_NODELAY on every connection.  Prints
// "listening on tcp HOST:PORT" once listening (PORT 0: an ephemeral port,
// the real one is printed).  SIGTERM and SIGINT end it with status 0.
'use strict';

const net = require('net');

const port = process.argv[2] === undefined ? NaN : Number(process.argv[2]);
const host = process.argv[3] || '127.0.0.1';
if (!Number.isInteger(port) || port < 0 || port > 65535) {
	process.stderr.write('usage: node node-echo.js PORT [HOST]\n');
	process.exit(1);
}

const server = net.createServer({ noDelay: true }, (socket) => {
	socket.setNoDelay(true);
	socket.on('error', () => socket.destroy());
	socket.pipe(socket);
});

server.on('error', (err) => {
	process.stderr.write('node-echo: ' + err.message + '\n');
	process.exit(1);
});

server.listen({ port: port, host: host, backlog: 4096 }, () => {
	const a = server.address();
	const h = a.family === 'IPv6' || a.family === 6 ? '[' + a.address + ']' : a.address;
	process.stdout.write('listening on tcp ' + h + ':' + a.port + '\n');
});

for (const sig of ['SIGTERM', 'SIGINT'])
	process.on(sig, () => process.exit(0));
