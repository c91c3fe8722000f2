/** The source adapters by kind: the only place that knows which kinds exist. */
import type { SourceKind } from '../project/config.js';
import { ModelsError } from '../util/errors.js';
import type { SourceAdapter } from './adapter.js';
import { ociSource } from './oci/adapter.js';
import { hfSource } from './hf/adapter.js';
import { urlSource } from './url/adapter.js';
import { xprimSource } from './xprim.js';

const adapters: Partial<Record<SourceKind, SourceAdapter>> = {
  xprim: xprimSource,
  url: urlSource,
  oci: ociSource,
  hf: hfSource,
};

export function adapterFor(kind: SourceKind): SourceAdapter {
  const adapter = adapters[kind];
  if (!adapter) {
    throw new ModelsError('E_CONFIG', `${kind}: sources are not supported by this version of xprim-models yet`, { hint: 'use a model: (XPRIM registry), url:, hf: or oci: entry' });
  }
  return adapter;
}

export type { SourceAdapter, ModelContent, ContentContext, SourceContext, CheckResult, ArchiveContent } from './adapter.js';
export { archivesOf } from './adapter.js';
