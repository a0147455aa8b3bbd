// @trellis/samples: the sample applications, importable for tests and tools.
export { main, SUBCOMMANDS } from './main.js';
export { runProductPage, sessionUser, encodeSession } from './bookinfo/productpage.js';
export { runDetails } from './bookinfo/details.js';
export { runReviews, reviewsConfig, type ReviewsConfig } from './bookinfo/reviews.js';
export { runRatings } from './bookinfo/ratings.js';
export { PROPAGATED_HEADERS, propagatedHeaders } from './bookinfo/trace-headers.js';
export { runHelloworld } from './helloworld.js';
export { runHttpbin, pickStatus } from './httpbin.js';
export { runTcpEcho } from './tcp-echo.js';
export { runCurl, parseCurlArgs } from './curl.js';
export { runNc } from './nc.js';
export { runSleep } from './sleep.js';
export { fetchUrl, OutboundError, type OutboundResponse } from './common/outbound.js';
export { proxyForUrl, noProxyMatches } from './common/proxy-env.js';
export { openTunnel } from './common/connect-tunnel.js';
export { listenHost, listenPort } from './common/listen-address.js';
