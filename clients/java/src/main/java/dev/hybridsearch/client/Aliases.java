package dev.hybridsearch.client;

import dev.hybridsearch.v1.AddAlias;
import dev.hybridsearch.v1.AliasAction;
import dev.hybridsearch.v1.RemoveAlias;

/** Steps of {@link HybridSearchClient#updateAliases(AliasAction...)}. */
public final class Aliases {
  private Aliases() {}

  /** Points {@code alias} at {@code collection} (a collection's name), creating or moving it. */
  public static AliasAction add(String alias, String collection) {
    return AliasAction.newBuilder().setAdd(AddAlias.newBuilder().setAlias(alias).setCollection(collection)).build();
  }

  /** Deletes {@code alias}. */
  public static AliasAction remove(String alias) {
    return AliasAction.newBuilder().setRemove(RemoveAlias.newBuilder().setAlias(alias)).build();
  }
}
