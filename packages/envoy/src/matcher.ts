// Proto3-JSON shapes of the string and regex matchers (envoy.type.matcher.v3).

/** `envoy.type.matcher.v3.RegexMatcher`: an RE2 regular expression. */
export interface RegexMatcher {
  regex?: string;
}

/** `envoy.type.matcher.v3.StringMatcher`: exactly one of exact / prefix / suffix / safeRegex / contains. */
export interface StringMatcher {
  exact?: string;
  prefix?: string;
  suffix?: string;
  safeRegex?: RegexMatcher;
  contains?: string;
  ignoreCase?: boolean;
}

/** `envoy.type.matcher.v3.ListStringMatcher`: any of several string matchers. */
export interface ListStringMatcher {
  patterns?: StringMatcher[];
}

/** `envoy.type.matcher.v3.RegexMatchAndSubstitute`: a regex rewrite. */
export interface RegexMatchAndSubstitute {
  pattern?: RegexMatcher;
  substitution?: string;
}

/** `envoy.type.matcher.v3.PathMatcher`: matches the path without the query string. */
export interface PathMatcher {
  path?: StringMatcher;
}
