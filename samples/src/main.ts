// The `trellis-sample` command: runs one sample application, chosen by the first argument.
// Servers keep running until SIGTERM; one-shot commands (curl, nc, sleep) resolve an exit code.
import { UsageError } from './common/args.js';
import { logError } from './common/log.js';
import { runDetails } from './bookinfo/details.js';
import { runProductPage } from './bookinfo/productpage.js';
import { runRatings } from './bookinfo/ratings.js';
import { reviewsConfig, runReviews } from './bookinfo/reviews.js';
import { runCurl } from './curl.js';
import { runHelloworld } from './helloworld.js';
import { runHttpbin } from './httpbin.js';
import { runLoad } from './load.js';
import { runNc } from './nc.js';
import { runSleep } from './sleep.js';
import { runTcpEcho } from './tcp-echo.js';

interface Subcommand {
  readonly name: string;
  readonly usage: string;
  /** Resolves with an exit code for one-shot commands, undefined for servers. */
  run(args: readonly string[]): Promise<number | undefined>;
}

const noArgs = (name: string, args: readonly string[]) => {
  if (args.length > 0) throw new UsageError(`${name} takes no arguments`);
};

export const SUBCOMMANDS: readonly Subcommand[] = [
  {
    name: 'bookinfo-productpage',
    usage: 'the product page (port 9080); calls details and reviews',
    run: async (args) => {
      noArgs('bookinfo-productpage', args);
      await runProductPage();
      return undefined;
    },
  },
  {
    name: 'bookinfo-details',
    usage: 'book details (port 9080)',
    run: async (args) => {
      noArgs('bookinfo-details', args);
      await runDetails();
      return undefined;
    },
  },
  {
    name: 'bookinfo-reviews',
    usage: '[--version v1|v2|v3] book reviews (port 9080); v2/v3 call ratings',
    run: async (args) => {
      await runReviews(reviewsConfig(args));
      return undefined;
    },
  },
  {
    name: 'bookinfo-ratings',
    usage: 'book ratings (port 9080)',
    run: async (args) => {
      noArgs('bookinfo-ratings', args);
      await runRatings();
      return undefined;
    },
  },
  {
    name: 'helloworld',
    usage: '[--version v1] answers /hello with its version and instance (port 5000)',
    run: async (args) => {
      await runHelloworld(args);
      return undefined;
    },
  },
  {
    name: 'httpbin',
    usage: 'an httpbin-like echo service (port 8080)',
    run: async (args) => {
      noArgs('httpbin', args);
      await runHttpbin();
      return undefined;
    },
  },
  {
    name: 'tcp-echo',
    usage: 'PORT[,PORT...] PREFIX  answers each line with "PREFIX line"',
    run: async (args) => {
      await runTcpEcho(args);
      return undefined;
    },
  },
  {
    name: 'sleep',
    usage: '[SECONDS|infinity]  idles until stopped (a client workload)',
    run: (args) => runSleep(args),
  },
  {
    name: 'curl',
    usage: '[-sSvifIkL] [-H H] [-X M] [-d D] [-o F] [-w FMT] [-m S] URL...  an HTTP client',
    run: (args) => runCurl(args),
  },
  {
    name: 'load',
    usage: '[-c CONNS] [-n REQUESTS] [-qps RATE] [--json] URL  a load generator (fortio-like)',
    run: (args) => runLoad(args),
  },
  {
    name: 'nc',
    usage: 'HOST PORT  copies stdin to a TCP connection and the answer to stdout',
    run: (args) => runNc(args),
  },
];

function help(): string {
  const width = Math.max(...SUBCOMMANDS.map((c) => c.name.length));
  return [
    'usage: trellis-sample COMMAND [ARGS]',
    '',
    'Sample applications for Trellis. Servers listen on $HOST (default 0.0.0.0) and',
    '$TRELLIS_PORT_<containerPort>, else $PORT, else their container port; outbound calls go',
    'through $http_proxy / $HTTP_PROXY when set (and not excluded by $NO_PROXY).',
    '',
    'Commands:',
    ...SUBCOMMANDS.map((c) => `  ${c.name.padEnd(width)}  ${c.usage}`),
    '',
  ].join('\n');
}

/** Runs `trellis-sample ARGS`; resolves with an exit code, or undefined while a server runs. */
export async function main(argv: readonly string[]): Promise<number | undefined> {
  const [name, ...args] = argv;
  if (name === undefined || name === '-h' || name === '--help' || name === 'help') {
    process.stdout.write(help());
    return name === undefined ? 2 : 0;
  }
  const command = SUBCOMMANDS.find((c) => c.name === name);
  if (command === undefined) {
    process.stderr.write(`trellis-sample: unknown command ${JSON.stringify(name)}\n\n${help()}`);
    return 2;
  }
  try {
    return await command.run(args);
  } catch (err) {
    if (err instanceof UsageError) {
      process.stderr.write(
        `trellis-sample ${name}: ${err.message}\nusage: trellis-sample ${name} ${command.usage}\n`,
      );
      return 2;
    }
    logError(name, err instanceof Error ? err.message : String(err));
    return 1;
  }
}
