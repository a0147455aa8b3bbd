// The bookinfo sample's data: one book, its details, two reviews and their ratings. The JSON
// shapes are those of Istio's bookinfo services, so clients and tests written for it still work.

/** A product as productpage lists it (`/api/v1/products`). */
export interface Product {
  readonly id: number;
  readonly title: string;
  readonly descriptionHtml: string;
}

export const PRODUCTS: readonly Product[] = [
  {
    id: 0,
    title: 'The Comedy of Errors',
    descriptionHtml:
      "Shakespeare's shortest play: two pairs of identical twins, separated as children by a shipwreck, end up in the same " +
      'city on the same day, and nobody in Ephesus can tell who is who. A farce of mistaken ' +
      'identity, wrongful arrests and a very confused wedding feast.',
  },
];

/** Details of a book (`/details/<id>`). */
export function bookDetails(id: number): Record<string, string | number> {
  return {
    id,
    author: 'William Shakespeare',
    year: 1595,
    type: 'paperback',
    pages: 200,
    publisher: 'PublisherA',
    language: 'English',
    'ISBN-10': '1234567890',
    'ISBN-13': '123-1234567890',
  };
}

/** The reviewers and what they wrote; the ratings service scores them by name. */
export const REVIEWS: readonly { readonly reviewer: string; readonly text: string }[] = [
  {
    reviewer: 'Reviewer1',
    text: 'A joy from start to finish: the mix-ups pile up faster than you can count them, and the slapstick still lands.',
  },
  {
    reviewer: 'Reviewer2',
    text: 'Great fun on stage, though it has less to say than the later plays; come for the jokes, not for depth.',
  },
];

/** The stars each reviewer gave (`/ratings/<id>`), before any update by POST. */
export const DEFAULT_RATINGS: Readonly<Record<string, number>> = {
  Reviewer1: 5,
  Reviewer2: 4,
};

/** The message reviews returns in place of stars when ratings cannot be fetched. */
export const RATINGS_UNAVAILABLE = 'Ratings service is currently unavailable';
export const DETAILS_UNAVAILABLE =
  'Sorry, product details are currently unavailable for this book.';
export const REVIEWS_UNAVAILABLE =
  'Sorry, product reviews are currently unavailable for this book.';
export const RATINGS_UNAVAILABLE_FOR_BOOK =
  'Sorry, product ratings are currently unavailable for this book.';

/** Parses a product id path segment: a non-negative integer. */
export function parseProductId(segment: string | undefined): number | undefined {
  if (segment === undefined || !/^\d{1,9}$/.test(segment)) return undefined;
  return Number(segment);
}
