// Whether a pod gets a sidecar, by Istio's injection rules (the injector webhook's
// namespaceSelector/objectSelector with the default `enableNamespacesByDefault: false`):
// the pod's `sidecar.istio.io/inject` label ("true"/"false"; the older annotation form is
// accepted too) wins; otherwise the namespace decides: `istio-injection=enabled`, or an
// `istio.io/rev` label while `istio-injection` is not `disabled`.

export const INJECT_LABEL = 'sidecar.istio.io/inject';
export const NAMESPACE_INJECTION_LABEL = 'istio-injection';
export const REVISION_LABEL = 'istio.io/rev';

export interface InjectionInput {
  readonly namespaceLabels?: Readonly<Record<string, string>> | undefined;
  readonly podLabels?: Readonly<Record<string, string>> | undefined;
  readonly podAnnotations?: Readonly<Record<string, string>> | undefined;
}

export interface InjectionDecision {
  readonly inject: boolean;
  /** Why, for `trellis status -o json` and logs. */
  readonly reason: string;
}

function flag(v: string | undefined): boolean | undefined {
  if (v === undefined) return undefined;
  const s = v.trim().toLowerCase();
  if (s === 'true' || s === 'y' || s === 'yes' || s === 'on') return true;
  if (s === 'false' || s === 'n' || s === 'no' || s === 'off') return false;
  return undefined;
}

export function injectionDecision(input: InjectionInput): InjectionDecision {
  const label = flag(input.podLabels?.[INJECT_LABEL]);
  if (label !== undefined) return { inject: label, reason: `pod label ${INJECT_LABEL}` };
  const annotation = flag(input.podAnnotations?.[INJECT_LABEL]);
  if (annotation !== undefined)
    return { inject: annotation, reason: `pod annotation ${INJECT_LABEL}` };
  const ns = input.namespaceLabels ?? {};
  const mode = ns[NAMESPACE_INJECTION_LABEL];
  if (mode === 'enabled')
    return { inject: true, reason: `namespace label ${NAMESPACE_INJECTION_LABEL}=enabled` };
  if (mode === 'disabled')
    return { inject: false, reason: `namespace label ${NAMESPACE_INJECTION_LABEL}=disabled` };
  if (ns[REVISION_LABEL] !== undefined)
    return { inject: true, reason: `namespace label ${REVISION_LABEL}` };
  return { inject: false, reason: 'namespace not labelled for injection' };
}
